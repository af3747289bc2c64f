//! A tiny child process for measuring and testing `benchfleet-metrics` without outside tools.
//!
//! `benchfleet-probe alloc <MiB>`: allocate and touch that much memory, then exit 0.
//! `benchfleet-probe spin <ms>`: burn that much CPU time in user space (process CPU clock).
//! `benchfleet-probe stderr <bytes>`: write that many bytes (`0123456789` repeated) to stderr.
//! `benchfleet-probe stdout <bytes>`: the same to stdout.
//! `benchfleet-probe exit <code>`: exit with that code.
//! `benchfleet-probe env <NAME>`: print the variable's value (empty when unset).
//! `benchfleet-probe pwd`: print the working directory.
//! `benchfleet-probe cpus`: print the CPUs this process may run on, e.g. `0,1`.

use std::io::Write;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or("");
    let num = |i: usize| arg(i).parse::<u64>().unwrap_or(0);
    match arg(0) {
        "alloc" => {
            let mut v = vec![0u8; (num(1) as usize) << 20];
            // Touch every page so it is resident.
            for chunk in v.chunks_mut(4096) {
                chunk[0] = 1;
            }
            std::hint::black_box(&v);
        }
        "spin" => {
            let target_ns = num(1) * 1_000_000;
            let mut x = 0u64;
            while cpu_time_ns() < target_ns {
                for i in 0..10_000u64 {
                    x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
                }
            }
        }
        "stderr" | "stdout" => {
            let data: Vec<u8> = b"0123456789"
                .iter()
                .copied()
                .cycle()
                .take(num(1) as usize)
                .collect();
            let _ = if arg(0) == "stderr" {
                std::io::stderr().write_all(&data)
            } else {
                std::io::stdout().write_all(&data)
            };
        }
        "exit" => std::process::exit(arg(1).parse().unwrap_or(1)),
        "env" => println!("{}", std::env::var(arg(1)).unwrap_or_default()),
        "pwd" => println!(
            "{}",
            std::env::current_dir()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        ),
        "cpus" => {
            let cpus = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
            let line = cpus
                .lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
                .unwrap_or("");
            println!("{}", line.trim());
        }
        other => {
            eprintln!("benchfleet-probe: unknown command `{other}` (see the source for the list)");
            std::process::exit(2);
        }
    }
}

fn cpu_time_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid pointer to a live timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}
