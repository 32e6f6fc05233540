//! The rocket example (work in progress).

fn main() {
    eprintln!("the rocket example is not written yet");
    std::process::exit(1);
}
