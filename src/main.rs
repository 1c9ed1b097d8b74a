fn main() {
    std::process::exit(certplane::cli::main());
}
