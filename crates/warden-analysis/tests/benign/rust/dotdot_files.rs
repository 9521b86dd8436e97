use std::fs;
use std::path::Path;
fn main() -> std::io::Result<()> {
    fs::create_dir_all("data")?;
    fs::write("data/x.txt", "hello")?;
    println!("{}", fs::read_to_string("./data/../data/x.txt")?);
    println!("{}", Path::new("/work/sub/file").exists());
    for e in fs::read_dir("data")? { println!("{:?}", e?.file_name()); }
    Ok(())
}
