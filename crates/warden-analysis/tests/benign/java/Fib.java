import java.math.BigInteger;
import java.util.Scanner;

public class Fib {
    static BigInteger fib(int n) {
        BigInteger a = BigInteger.ZERO, b = BigInteger.ONE;
        for (int i = 0; i < n; i++) {
            BigInteger t = a.add(b);
            a = b;
            b = t;
        }
        return a;
    }

    public static void main(String[] args) {
        Scanner sc = new Scanner(System.in);
        int n = sc.hasNextInt() ? sc.nextInt() : 10;
        for (int i = 0; i <= n; i++) {
            System.out.printf("fib(%d) = %s%n", i, fib(i));
        }
        while (true) {
            if (--n < 0) break;
        }
    }
}
