import java.nio.file.*;
import java.io.*;
import java.util.*;
public class Files1 {
  public static void main(String[] a) throws IOException {
    Path d = Paths.get("data"); Files.createDirectories(d);
    Files.writeString(d.resolve("x.txt"), "hello\nworld\n");
    System.out.println(Files.readAllLines(Paths.get("./data/../data/x.txt")));
    System.out.println(Files.exists(Path.of("/work/sub/file")));
    try (var w = new PrintWriter(new FileWriter("out.txt"))) { w.println(42); }
    System.out.println(new File("out.txt").length());
  }
}
