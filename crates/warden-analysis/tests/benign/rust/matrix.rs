use std::fmt;
use std::ops::Mul;

#[derive(Clone, Debug, PartialEq)]
struct Matrix {
    rows: usize,
    cols: usize,
    data: Vec<f64>,
}

impl Matrix {
    fn identity(n: usize) -> Self {
        let mut data = vec![0.0; n * n];
        for i in 0..n {
            data[i * n + i] = 1.0;
        }
        Matrix { rows: n, cols: n, data }
    }
}

impl Mul for &Matrix {
    type Output = Matrix;
    fn mul(self, other: &Matrix) -> Matrix {
        let mut data = vec![0.0; self.rows * other.cols];
        for i in 0..self.rows {
            for j in 0..other.cols {
                data[i * other.cols + j] = (0..self.cols)
                    .map(|k| self.data[i * self.cols + k] * other.data[k * other.cols + j])
                    .sum();
            }
        }
        Matrix { rows: self.rows, cols: other.cols, data }
    }
}

impl fmt::Display for Matrix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for r in self.data.chunks(self.cols) {
            writeln!(f, "{:?}", r)?;
        }
        Ok(())
    }
}

fn main() {
    let a = Matrix { rows: 2, cols: 2, data: vec![1.0, 2.0, 3.0, 4.0] };
    let id = Matrix::identity(2);
    assert_eq!(&a * &id, a);
    print!("{}", &a * &a);
    let words: Vec<&str> = "the quick brown fox".split(' ').rev().collect();
    println!("{}", words.join(" "));
}
