//! A stand-alone sandbox helper for the crate's own tests; the `warden` binary plays this role
//! itself (`warden __sandbox-helper`).

fn main() {
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == warden_sandbox::ZYGOTE_ARG)
    {
        warden_sandbox::zygote_main()
    }
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == warden_sandbox::SECCOMP_EXEC_ARG)
    {
        warden_sandbox::seccomp_exec_main()
    }
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == warden_sandbox::CGROUP_EXEC_ARG)
    {
        warden_sandbox::cgroup_exec_main()
    }
    warden_sandbox::helper_main()
}
