// Starts a thread per round and stops after five rounds.
public class CountedThreads {
    public static void main(String[] args) throws InterruptedException {
        int[] sum = {0};
        int round = 0;
        while (true) {
            final int r = round;
            Thread t = new Thread(() -> sum[0] += r * r);
            t.start();
            t.join();
            round++;
            if (round == 5) {
                break;
            }
        }
        System.out.println(sum[0]);
    }
}
