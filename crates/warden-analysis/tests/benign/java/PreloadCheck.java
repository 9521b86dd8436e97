import java.util.HashMap;
import java.util.Map;

/** Warns when the dynamic loader injects a library into this JVM, and builds a copy of the
 *  environment without the loader's variables for whatever is started next. */
public class PreloadCheck {
    static Map<String, String> injected() {
        Map<String, String> found = new HashMap<>();
        String preload = System.getenv("LD_PRELOAD");
        if (preload != null) {
            found.put("preload", preload);
        }
        if (System.getenv().containsKey("LD_AUDIT")) {
            found.put("audit", System.getenv("LD_AUDIT"));
        }
        return found;
    }

    static Map<String, String> sanitised(Map<String, String> environment) {
        Map<String, String> env = new HashMap<>(environment);
        env.remove("LD_PRELOAD");
        env.remove("LD_AUDIT");
        return env;
    }

    public static void main(String[] args) {
        Map<String, String> found = injected();
        for (Map.Entry<String, String> e : found.entrySet()) {
            System.err.println(e.getKey() + ": " + e.getValue());
        }
        System.out.println(sanitised(System.getenv()).size() + " variables kept");
        System.exit(found.isEmpty() ? 0 : 1);
    }
}
