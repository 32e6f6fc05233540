//! The actix example (work in progress).

fn main() {
    eprintln!("the actix example is not written yet");
    std::process::exit(1);
}
