//! A stand-alone sandbox helper for the crate's own tests; the `warden` binary plays this role
//! itself (`warden __sandbox-helper`).

fn main() {
    warden_sandbox::helper_main()
}
