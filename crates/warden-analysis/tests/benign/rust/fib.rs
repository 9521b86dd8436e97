use std::collections::HashMap;
use std::thread;

fn fib(n: u64, memo: &mut HashMap<u64, u128>) -> u128 {
    if n < 2 {
        return n as u128;
    }
    if let Some(&v) = memo.get(&n) {
        return v;
    }
    let v = fib(n - 1, memo) + fib(n - 2, memo);
    memo.insert(n, v);
    v
}

fn main() {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).unwrap();
    let n: u64 = line.trim().parse().unwrap_or(10);
    let handles: Vec<_> = (0..4)
        .map(|k| thread::spawn(move || fib(n + k, &mut HashMap::new())))
        .collect();
    for h in handles {
        println!("{}", h.join().unwrap());
    }
    let mut count = 0;
    loop {
        count += 1;
        if count > 3 {
            break;
        }
    }
}
