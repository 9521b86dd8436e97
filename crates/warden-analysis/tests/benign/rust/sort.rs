use std::io::{self, Read};

/// Insertion sort; `std::process::Command::new("sh")` in a doc comment is text.
fn insertion_sort<T: Ord>(v: &mut [T]) {
    for i in 1..v.len() {
        let mut j = i;
        while j > 0 && v[j - 1] > v[j] {
            v.swap(j - 1, j);
            j -= 1;
        }
    }
}

fn main() {
    let mut input = String::new();
    io::stdin().read_to_string(&mut input).expect("stdin");
    let mut nums: Vec<i64> = input.split_whitespace().filter_map(|t| t.parse().ok()).collect();
    insertion_sort(&mut nums);
    let out: Vec<String> = nums.iter().map(|n| n.to_string()).collect();
    println!("{}", out.join(" "));
    println!("{}", "unsafe { libc::system(\"rm -rf /\") }".len());
}
