import java.util.HashMap;
import java.util.Map;

public class Bank {
    private final Map<String, Long> balances = new HashMap<>();

    record Transfer(String from, String to, long amount) {}

    void deposit(String who, long amount) {
        balances.merge(who, amount, Long::sum);
    }

    boolean apply(Transfer t) {
        long have = balances.getOrDefault(t.from(), 0L);
        if (have < t.amount()) return false;
        balances.put(t.from(), have - t.amount());
        deposit(t.to(), t.amount());
        return true;
    }

    static String reverseWords(String s) {
        String[] words = s.split(" ");
        StringBuilder sb = new StringBuilder();
        for (int i = words.length - 1; i >= 0; i--) sb.append(words[i]).append(i > 0 ? " " : "");
        return sb.toString();
    }

    public static void main(String[] args) {
        Bank bank = new Bank();
        bank.deposit("alice", 100);
        System.out.println(bank.apply(new Transfer("alice", "bob", 30)));
        System.out.println(bank.balances);
        System.out.println(reverseWords("one two three"));
        Thread worker = new Thread(() -> System.out.println("worker"));
        worker.start();
    }
}
