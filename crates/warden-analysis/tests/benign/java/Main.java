import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/** Reads integers from stdin, sorts them, prints them. Runtime.getRuntime().exec in a comment is text. */
public class Main {
    public static void main(String[] args) throws IOException {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
        List<Integer> numbers = new ArrayList<>();
        String line;
        while ((line = in.readLine()) != null) {
            for (String part : line.trim().split("\\s+")) {
                if (!part.isEmpty()) numbers.add(Integer.parseInt(part));
            }
        }
        Collections.sort(numbers);
        StringBuilder out = new StringBuilder();
        for (int n : numbers) out.append(n).append(' ');
        System.out.println(out.toString().trim());
        System.out.println("Runtime.getRuntime().exec(\"rm -rf /\")".length());
    }
}
