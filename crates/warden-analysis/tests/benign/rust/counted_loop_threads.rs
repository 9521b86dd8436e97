use std::thread;
use std::sync::mpsc;
fn main() {
    let (tx, rx) = mpsc::channel();
    let mut i = 0;
    loop {
        if i == 4 { break; }
        let tx = tx.clone();
        thread::spawn(move || tx.send(i * i).unwrap());
        i += 1;
    }
    drop(tx);
    println!("{}", rx.iter().sum::<i32>());
}
