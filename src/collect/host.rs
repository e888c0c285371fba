//! CPU, memory, cgroup limit and the disks of the data directory and of the WAL directory of
//! this machine — read only when the server runs here (a unix socket or a loopback address),
//! since otherwise they would describe the wrong machine. pg_wal may be a symlink to another
//! filesystem: it is resolved, which needs pgopt to be allowed into the data directory (run
//! as the server's OS user or root); otherwise the WAL disk stays unknown.

use std::path::{Path, PathBuf};

use sysinfo::{CpuRefreshKind, MemoryRefreshKind, System};

use super::Outcome;
use crate::error::{Error, Result};
use crate::snapshot::{DiskInfo, HostInfo, HugePages};

/// cgroup v2, then v1.
const CGROUP_LIMIT_FILES: &[&str] = &[
    "/sys/fs/cgroup/memory.max",
    "/sys/fs/cgroup/memory/memory.limit_in_bytes",
];
/// At or above this a cgroup "limit" means none (v1 writes 2^63 rounded down to a page).
const NO_LIMIT_FROM: u64 = 1 << 60;

pub(crate) async fn collect(
    host: &str,
    data_directory: Option<String>,
    include: bool,
) -> Result<Outcome<HostInfo>> {
    if !include {
        return Ok(Outcome::skipped(
            "host facts were not asked for",
            "leave out --no-host to read CPU, memory and disk of this machine",
        ));
    }
    if !is_local(host) {
        return Ok(Outcome::skipped(
            "server is not on this machine",
            "run pgopt on the database server (over its unix socket) to include CPU, memory and disk",
        ));
    }
    tokio::task::spawn_blocking(move || read_host(data_directory.as_deref()))
        .await
        .map_err(|e| Error::Internal(format!("host: reading this machine: {e}")))
        .map(Outcome::Collected)
}

/// A unix socket directory, localhost or a loopback address.
pub(crate) fn is_local(host: &str) -> bool {
    crate::snapshot::is_local_host(host)
}

fn read_host(data_directory: Option<&str>) -> HostInfo {
    let mut sys = System::new();
    sys.refresh_memory_specifics(MemoryRefreshKind::nothing().with_ram());
    sys.refresh_cpu_list(CpuRefreshKind::nothing());
    let mut cpus = sys.cpus().len();
    if cpus == 0 {
        cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    }
    let memory_bytes = sys.total_memory();
    let cgroup_memory_limit_bytes = CGROUP_LIMIT_FILES
        .iter()
        .find_map(|f| std::fs::read_to_string(f).ok())
        .and_then(|text| parse_cgroup_limit(&text, memory_bytes));
    let data_disk = data_directory.and_then(disk_of);
    let wal_directory = data_directory.and_then(resolve_wal_directory);
    let wal_disk = wal_directory.as_deref().and_then(disk_of);
    let huge_pages = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| parse_huge_pages(&text));
    HostInfo {
        cpus,
        memory_bytes,
        cgroup_memory_limit_bytes,
        data_disk,
        wal_directory,
        wal_disk,
        huge_pages,
    }
}

/// `data_directory/pg_wal` with every symlink resolved, when it can be read from here.
pub(crate) fn resolve_wal_directory(data_directory: &str) -> Option<String> {
    std::fs::canonicalize(Path::new(data_directory).join("pg_wal"))
        .ok()
        .map(|p| p.display().to_string())
}

/// HugePages_Total, HugePages_Free and Hugepagesize (kB) from /proc/meminfo's text.
pub(crate) fn parse_huge_pages(meminfo: &str) -> Option<HugePages> {
    let field = |name: &str| {
        meminfo.lines().find_map(|line| {
            let rest = line.strip_prefix(name)?.strip_prefix(':')?;
            rest.split_whitespace().next()?.parse::<u64>().ok()
        })
    };
    Some(HugePages {
        total: field("HugePages_Total")?,
        free: field("HugePages_Free")?,
        page_size_kb: field("Hugepagesize")?,
    })
}

/// The limit in a cgroup memory file, when it is a real limit below physical memory.
pub(crate) fn parse_cgroup_limit(text: &str, physical: u64) -> Option<u64> {
    let limit: u64 = text.trim().parse().ok()?; // "max" does not parse: no limit
    (limit < NO_LIMIT_FROM && (physical == 0 || limit < physical)).then_some(limit)
}

/// The filesystem holding `dir` (symlinks resolved when they can be): its sizes from
/// statvfs(3), which answers for any filesystem type (sysinfo's disk list leaves out tmpfs and
/// so would name the wrong disk), and its mount point found by walking up while the device
/// stays the same. None when `dir` cannot be looked at from here.
fn disk_of(dir: &str) -> Option<DiskInfo> {
    use std::os::unix::fs::MetadataExt;
    let path = std::fs::canonicalize(dir).unwrap_or_else(|_| PathBuf::from(dir));
    let (total_bytes, available_bytes) = statvfs(&path)?;
    let dev = std::fs::metadata(&path).ok()?.dev();
    let mut mount = path.as_path();
    while let Some(parent) = mount.parent() {
        match std::fs::metadata(parent) {
            Ok(m) if m.dev() == dev => mount = parent,
            _ => break,
        }
    }
    Some(DiskInfo {
        mount_point: mount.display().to_string(),
        total_bytes,
        available_bytes,
    })
}

/// (total, available to unprivileged users) bytes of the filesystem holding `path`.
// The field types are u64 on 64-bit Linux but narrower elsewhere: the casts are for those.
#[allow(clippy::unnecessary_cast)]
fn statvfs(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: c_path is a NUL-terminated path and st is a buffer of the right type, which
    // statvfs fills in when it returns 0.
    let rc = unsafe { libc::statvfs(c_path.as_ptr(), st.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: statvfs returned 0, so it initialised st.
    let st = unsafe { st.assume_init() };
    let block = st.f_frsize as u64;
    Some((st.f_blocks as u64 * block, st.f_bavail as u64 * block))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sockets_and_loopback_are_local() {
        assert!(is_local("/var/run/postgresql"));
        assert!(is_local("localhost"));
        assert!(is_local("127.0.0.1"));
        assert!(is_local("::1"));
        assert!(is_local("[::1]"));
        assert!(!is_local("db.example.com"));
        assert!(!is_local("10.0.0.5"));
    }

    #[test]
    fn wal_directory_symlink_is_resolved() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        let elsewhere = tmp.path().join("other_fs_wal");
        std::fs::create_dir_all(&data).unwrap();
        std::fs::create_dir_all(&elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, data.join("pg_wal")).unwrap();
        let resolved = resolve_wal_directory(data.to_str().unwrap()).unwrap();
        assert_eq!(
            resolved,
            std::fs::canonicalize(&elsewhere)
                .unwrap()
                .display()
                .to_string()
        );
        assert_eq!(resolve_wal_directory("/nonexistent/pgopt/data"), None);
    }

    #[test]
    fn disk_of_a_directory_has_its_filesystem_and_mount_point() {
        let tmp = tempfile::tempdir().unwrap();
        let disk = disk_of(tmp.path().to_str().unwrap()).unwrap();
        assert!(disk.total_bytes > 0 && disk.available_bytes <= disk.total_bytes);
        let canonical = std::fs::canonicalize(tmp.path()).unwrap();
        assert!(canonical.starts_with(&disk.mount_point), "{disk:?}");
        let root = disk_of("/").unwrap();
        assert_eq!(root.mount_point, "/");
        assert_eq!(disk_of("/nonexistent/pgopt/data"), None);
    }

    #[test]
    fn huge_pages_come_from_meminfo() {
        let text =
            "MemTotal:       24576000 kB\nHugePages_Total:     512\nHugePages_Free:      500\n\
                    HugePages_Rsvd:        0\nHugepagesize:       2048 kB\n";
        assert_eq!(
            parse_huge_pages(text),
            Some(HugePages {
                total: 512,
                free: 500,
                page_size_kb: 2048
            })
        );
        assert_eq!(parse_huge_pages("MemTotal: 1 kB\n"), None);
    }

    #[test]
    fn cgroup_max_and_huge_values_mean_no_limit() {
        let gib = 1 << 30;
        assert_eq!(parse_cgroup_limit("max\n", 8 * gib), None);
        assert_eq!(parse_cgroup_limit("9223372036854771712\n", 8 * gib), None);
        assert_eq!(parse_cgroup_limit("2147483648\n", 8 * gib), Some(2 * gib));
        assert_eq!(parse_cgroup_limit("17179869184", 8 * gib), None);
    }
}
