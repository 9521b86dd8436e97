import java.io.IOException;
import java.io.StringReader;
import java.util.Arrays;
import java.util.Properties;

/** Measures how much heap an array takes, with settings read from a properties text. */
public class MemoryStats {
    public static void main(String[] args) throws IOException {
        Runtime rt = Runtime.getRuntime();
        Properties props = new Properties();
        props.load(new StringReader("size=1048576\nfill=7\n"));
        int size = Integer.parseInt(props.getProperty("size"));
        long before = rt.totalMemory() - rt.freeMemory();
        int[] big = new int[size];
        Arrays.fill(big, Integer.parseInt(props.getProperty("fill")));
        long after = rt.totalMemory() - rt.freeMemory();
        System.out.println((after - before) / 1024 + " KiB for " + size + " ints, "
                + rt.availableProcessors() + " processors, first " + big[0]);
    }
}
