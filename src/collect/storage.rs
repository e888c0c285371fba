//! Which storage the server's data directory lives on, for `--storage` when it is not given.
//!
//! The device number of the data directory (`stat`) leads to `/sys/dev/block/MAJ:MIN`; a
//! partition is resolved to its disk, a device-mapper or md device to the disks in its
//! `slaves/`, and each disk's `queue/rotational` (1: spinning) and name (`nvme*`) decide:
//! any spinning disk makes it hdd (random reads are as slow as the slowest disk), all NVMe
//! disks make it nvme, anything else is ssd. A filesystem with no block device (tmpfs,
//! overlay, NFS) is "not detected", with the reason. SAN cannot be told from sysfs.
//!
//! A virtual disk (virtio `vd*`, Xen `xvd*`, a QEMU/VMware/Xen/Virtio/Hyper-V vendor, a cloud
//! block device such as Amazon EBS behind an NVMe name) says little about the hardware under
//! it: its rotational flag is often 1 on SSD-backed hosts. Such disks count as ssd, and the
//! report says how they were recognised and that `--storage` overrides it.
//!
//! The mapping takes the sysfs root and the mount table as arguments so that it is tested on
//! fake trees; only [`detect_data_dir`] reads this machine. The result, with how it was found
//! (or why not), goes into the snapshot (`Snapshot::data_storage`), so that `pgopt tune`
//! advises from the snapshot alone. Which kind a device makes is pure (`tune::storage`).

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::Outcome;
use crate::error::{Error, Result};
use crate::snapshot::{BlockDevice, Disk, StorageSource};

/// The storage under the data directory of a server on this machine: `local` says whether it
/// is, `data_directory` is None when the role may not read it (`user` names the role).
pub(crate) async fn collect(
    include: bool,
    local: bool,
    data_directory: Option<String>,
    user: &str,
) -> Result<Outcome<StorageSource>> {
    if !include {
        return Ok(Outcome::skipped(
            "host facts were not asked for",
            "leave out --no-host to detect the storage under the data directory",
        ));
    }
    let source = match (local, data_directory) {
        (false, _) => StorageSource::NotDetected {
            reason: "the server is not on this machine".into(),
        },
        (true, None) => StorageSource::NotDetected {
            reason: format!(
                "data_directory is not readable by role {user} (superuser or pg_read_all_settings \
                 needed)"
            ),
        },
        (true, Some(dir)) => {
            let dir = PathBuf::from(dir);
            tokio::task::spawn_blocking(move || detect_data_dir(&dir))
                .await
                .map_err(|e| Error::Internal(format!("detecting storage: {e}")))?
        }
    };
    Ok(Outcome::Collected(source))
}

/// How deep `slaves/` chains are followed (dm over md over partitions is three).
const MAX_DEPTH: usize = 8;

/// Vendors (`device/vendor`) of emulated or paravirtual disks.
const VIRTUAL_VENDORS: &[&str] = &["QEMU", "VMware", "Xen", "Virtio", "Msft"];
/// Models (`device/model`) of emulated disks and cloud block storage.
const VIRTUAL_MODELS: &[&str] = &[
    "Amazon Elastic Block Store",
    "QEMU",
    "VMware Virtual",
    "Virtual disk",
    "PersistentDisk",
    "Google EphemeralDisk",
    "Virtual HD",
];

/// Why the disk at sysfs directory `dir` (named `name`) looks virtual, if it does.
fn virtual_disk(dir: &Path, name: &str) -> Option<String> {
    let read = |f: &str| {
        fs::read_to_string(dir.join("device").join(f))
            .ok()
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
    };
    if let Some(model) = read("model") {
        if let Some(m) = VIRTUAL_MODELS.iter().find(|m| model.contains(**m)) {
            return Some(format!(
                "model {model:?} ({m}) is a virtual or cloud block device"
            ));
        }
    }
    if let Some(vendor) = read("vendor") {
        if VIRTUAL_VENDORS.iter().any(|v| vendor.contains(v)) {
            return Some(format!("vendor {vendor:?} is a hypervisor's"));
        }
    }
    if name.starts_with("xvd") {
        return Some("xvd* is a Xen virtual disk".to_string());
    }
    if name.starts_with("vd") {
        return Some("vd* is a virtio disk".to_string());
    }
    let path = dir.to_string_lossy();
    ["virtio", "/xen", "vmbus"]
        .iter()
        .find(|bus| path.contains(**bus))
        .map(|bus| format!("it sits on the {} bus", bus.trim_start_matches('/')))
}

/// One line of /proc/self/mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub dev: (u32, u32),
    pub mount_point: PathBuf,
    pub fstype: String,
    pub source: String,
}

/// Parses /proc/self/mountinfo (proc(5)): `id parent MAJ:MIN root mountpoint opts [tags] -
/// fstype source superopts`, with spaces in paths written as `\040`.
pub fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let f: Vec<&str> = left.split(' ').collect();
            let (maj, min) = f.get(2)?.split_once(':')?;
            let mut r = right.split(' ');
            Some(Mount {
                dev: (maj.parse().ok()?, min.parse().ok()?),
                mount_point: PathBuf::from(unescape(f.get(4)?)),
                fstype: r.next()?.to_string(),
                source: unescape(r.next().unwrap_or("")),
            })
        })
        .collect()
}

/// Undoes mountinfo's octal escapes (`\040` space, `\011` tab, `\012` newline, `\134` `\`).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The mount holding `path` with device number `dev`: the longest mount point that is a
/// prefix of the path (the last such line when mounts are stacked).
pub fn mount_of<'a>(mounts: &'a [Mount], dev: (u32, u32), path: &Path) -> Option<&'a Mount> {
    mounts
        .iter()
        .filter(|m| m.dev == dev && path.starts_with(&m.mount_point))
        .max_by_key(|m| m.mount_point.as_os_str().len())
}

/// The block device `MAJ:MIN` and the disks under it, read from the sysfs tree at `sysfs`.
pub fn block_device(sysfs: &Path, dev: (u32, u32)) -> Result<BlockDevice, String> {
    let link = sysfs.join("dev/block").join(format!("{}:{}", dev.0, dev.1));
    let dir = fs::canonicalize(&link).map_err(|_| {
        format!(
            "{}:{} is not a block device in {}",
            dev.0,
            dev.1,
            link.display()
        )
    })?;
    let device = name_of(&dir);
    let mut disks = Vec::new();
    collect_disks(&dir, 0, &mut disks);
    if disks.is_empty() {
        return Err(format!("no disk found under {device}"));
    }
    Ok(BlockDevice { device, disks })
}

fn name_of(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Adds the whole disks under the device directory `dir`: a partition's parent, the
/// `slaves/` of a dm or md device (recursively), or the device itself.
fn collect_disks(dir: &Path, depth: usize, out: &mut Vec<Disk>) {
    if depth > MAX_DEPTH {
        return;
    }
    let dir = if dir.join("partition").exists() {
        match dir.parent() {
            Some(p) => p.to_path_buf(),
            None => return,
        }
    } else {
        dir.to_path_buf()
    };
    let mut slaves: Vec<PathBuf> = fs::read_dir(dir.join("slaves"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| fs::canonicalize(e.path()).ok())
                .collect()
        })
        .unwrap_or_default();
    slaves.sort();
    if !slaves.is_empty() {
        for s in slaves {
            collect_disks(&s, depth + 1, out);
        }
        return;
    }
    let name = name_of(&dir);
    if out.iter().any(|d| d.name == name) {
        return;
    }
    let rotational = fs::read_to_string(dir.join("queue/rotational"))
        .ok()
        .and_then(|t| match t.trim() {
            "1" => Some(true),
            "0" => Some(false),
            _ => None,
        });
    let virtual_disk = virtual_disk(&dir, &name);
    out.push(Disk {
        name,
        rotational,
        virtual_disk,
    });
}

/// The storage under `data_dir` with device number `dev`, from a sysfs tree and a mount
/// table. A filesystem with no block device of its own (device major 0: btrfs, tmpfs,
/// overlay, NFS) is looked up in the mount table, and followed when its source is a device
/// node (`/dev/...`, whose number `rdev_of` reads).
pub fn detect(
    data_dir: &Path,
    dev: (u32, u32),
    sysfs: &Path,
    mounts: &[Mount],
    rdev_of: &dyn Fn(&Path) -> Option<(u32, u32)>,
) -> StorageSource {
    let mut dev = dev;
    if dev.0 == 0 {
        let Some(m) = mount_of(mounts, dev, data_dir) else {
            return StorageSource::NotDetected {
                reason: format!(
                    "{} is on a filesystem with no block device",
                    data_dir.display()
                ),
            };
        };
        match rdev_of(Path::new(&m.source)).filter(|_| m.source.starts_with("/dev/")) {
            Some(d) => dev = d,
            None => {
                return StorageSource::NotDetected {
                    reason: format!(
                        "{} is on {} ({}), which has no block device",
                        data_dir.display(),
                        m.fstype,
                        m.mount_point.display()
                    ),
                }
            }
        }
    }
    match block_device(sysfs, dev) {
        Ok(device) => match device.storage() {
            Some(storage) => StorageSource::Detected {
                storage,
                data_directory: data_dir.display().to_string(),
                device,
            },
            None => StorageSource::NotDetected {
                reason: format!("queue/rotational of {} is not readable", device.describe()),
            },
        },
        Err(reason) => StorageSource::NotDetected { reason },
    }
}

/// [`detect`] on this machine: stat of `data_dir`, /proc/self/mountinfo and /sys.
pub fn detect_data_dir(data_dir: &Path) -> StorageSource {
    let meta = match fs::metadata(data_dir) {
        Ok(m) => m,
        Err(e) => {
            return StorageSource::NotDetected {
                reason: format!("cannot stat {}: {e}", data_dir.display()),
            }
        }
    };
    let split = |d: u64| (libc::major(d), libc::minor(d));
    let mounts = parse_mountinfo(&fs::read_to_string("/proc/self/mountinfo").unwrap_or_default());
    let rdev_of = |p: &Path| {
        fs::metadata(p)
            .ok()
            .filter(|m| m.file_type().is_block_device())
            .map(|m| split(m.rdev()))
    };
    detect(
        data_dir,
        split(meta.dev()),
        Path::new("/sys"),
        &mounts,
        &rdev_of,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::Storage;
    use std::os::unix::fs::symlink;

    /// A fake sysfs: `devices/.../block/<disk>[/<partition>]` directories with
    /// `queue/rotational` and `partition` files, `dev/block/MAJ:MIN` links to them.
    struct Sysfs(tempfile::TempDir);

    impl Sysfs {
        fn new() -> Self {
            let s = Sysfs(tempfile::tempdir().unwrap());
            fs::create_dir_all(s.root().join("dev/block")).unwrap();
            s
        }

        fn root(&self) -> &Path {
            self.0.path()
        }

        /// A disk under `bus` (e.g. `pci0000:00/virtio1`), rotational or not; returns its dir.
        fn disk(&self, bus: &str, name: &str, dev: &str, rotational: &str) -> PathBuf {
            let dir = self
                .root()
                .join("devices")
                .join(bus)
                .join("block")
                .join(name);
            fs::create_dir_all(dir.join("queue")).unwrap();
            fs::write(dir.join("queue/rotational"), format!("{rotational}\n")).unwrap();
            self.link(dev, &dir);
            dir
        }

        fn partition(&self, disk: &Path, name: &str, dev: &str) -> PathBuf {
            let dir = disk.join(name);
            fs::create_dir_all(&dir).unwrap();
            fs::write(dir.join("partition"), "1\n").unwrap();
            self.link(dev, &dir);
            dir
        }

        /// A virtual device (dm-N, mdN) over `slaves`.
        fn virtual_device(&self, name: &str, dev: &str, slaves: &[&Path]) -> PathBuf {
            let dir = self.root().join("devices/virtual/block").join(name);
            fs::create_dir_all(dir.join("slaves")).unwrap();
            fs::create_dir_all(dir.join("queue")).unwrap();
            // The kernel reports dm devices as not rotational whatever lies beneath.
            fs::write(dir.join("queue/rotational"), "0\n").unwrap();
            for s in slaves {
                symlink(s, dir.join("slaves").join(s.file_name().unwrap())).unwrap();
            }
            self.link(dev, &dir);
            dir
        }

        fn link(&self, dev: &str, dir: &Path) {
            symlink(dir, self.root().join("dev/block").join(dev)).unwrap();
        }

        fn detect(&self, dev: (u32, u32)) -> StorageSource {
            detect(Path::new("/data/pg"), dev, self.root(), &[], &|_| None)
        }
    }

    fn detected(s: StorageSource) -> (Storage, String) {
        match s {
            StorageSource::Detected {
                storage, device, ..
            } => (storage, device.describe()),
            other => panic!("not detected: {other:?}"),
        }
    }

    #[test]
    fn a_rotational_disk_is_hdd() {
        let fs = Sysfs::new();
        fs.disk("pci0000:00/ata1", "sda", "8:0", "1");
        let (storage, how) = detected(fs.detect((8, 0)));
        assert_eq!((storage, how.as_str()), (Storage::Hdd, "sda, rotational=1"));
    }

    #[test]
    fn a_non_rotational_virtio_disk_is_ssd() {
        let fs = Sysfs::new();
        fs.disk("pci0000:00/virtio1", "vda", "254:0", "0");
        let s = fs.detect((254, 0));
        assert_eq!(
            s.describe(Storage::Ssd),
            "storage: ssd (detected: vda, rotational=0)"
        );
        assert_eq!(s.storage(), Some(Storage::Ssd));
    }

    #[test]
    fn an_nvme_partition_resolves_to_its_disk_and_is_nvme() {
        let fs = Sysfs::new();
        let disk = fs.disk("pci0000:00/nvme/nvme0", "nvme0n1", "259:0", "0");
        fs.partition(&disk, "nvme0n1p2", "259:2");
        let (storage, how) = detected(fs.detect((259, 2)));
        assert_eq!(storage, Storage::Nvme);
        assert_eq!(how, "nvme0n1p2 on nvme0n1, rotational=0");
    }

    /// Writes `device/<file>` of a disk directory (vendor, model).
    fn device_file(disk: &Path, file: &str, text: &str) {
        fs::create_dir_all(disk.join("device")).unwrap();
        fs::write(disk.join("device").join(file), format!("{text}\n")).unwrap();
    }

    #[test]
    fn a_rotational_virtio_disk_stays_ssd_and_says_why() {
        let fs = Sysfs::new();
        let disk = fs.disk("pci0000:00/virtio1", "vda", "254:0", "1");
        fs.partition(&disk, "vda1", "254:1");
        let s = fs.detect((254, 1));
        assert_eq!(s.storage(), Some(Storage::Ssd));
        let line = s.describe(Storage::Ssd);
        assert!(
            line.starts_with("storage: ssd (detected: vda1 on vda, rotational=1; vda looks virtual (vd* is a virtio disk): a virtual disk's rotational flag is unreliable, taken as ssd"),
            "{line}"
        );
        assert!(line.contains("--storage"), "{line}");
    }

    #[test]
    fn xen_and_hypervisor_vendor_disks_are_virtual() {
        let fs = Sysfs::new();
        fs.disk("xen/vbd-51712", "xvda", "202:0", "1");
        assert_eq!(fs.detect((202, 0)).storage(), Some(Storage::Ssd));
        // An sd* disk whose vendor is the hypervisor's (VMware, QEMU SCSI emulation).
        let sda = fs.disk("pci0000:00/0000:00:10.0/host2", "sda", "8:0", "1");
        device_file(&sda, "vendor", "VMware  ");
        let s = fs.detect((8, 0));
        assert_eq!(s.storage(), Some(Storage::Ssd));
        assert!(s
            .describe(Storage::Ssd)
            .contains(r#"vendor "VMware" is a hypervisor's"#));
        let sdb = fs.disk("pci0000:00/0000:00:05.0/host3", "sdb", "8:16", "1");
        device_file(&sdb, "vendor", "QEMU");
        assert_eq!(fs.detect((8, 16)).storage(), Some(Storage::Ssd));
    }

    #[test]
    fn amazon_ebs_behind_an_nvme_name_is_ssd_not_nvme() {
        let fs = Sysfs::new();
        let disk = fs.disk(
            "pci0000:00/0000:00:1f.0/nvme/nvme1",
            "nvme1n1",
            "259:1",
            "1",
        );
        device_file(&disk, "model", "Amazon Elastic Block Store");
        let s = fs.detect((259, 1));
        assert_eq!(s.storage(), Some(Storage::Ssd));
        assert!(
            s.describe(Storage::Ssd)
                .contains("Amazon Elastic Block Store"),
            "{}",
            s.describe(Storage::Ssd)
        );
    }

    #[test]
    fn a_physical_spinning_disk_beside_a_virtual_one_is_still_hdd() {
        let fs = Sysfs::new();
        let a = fs.disk("pci0000:00/virtio1", "vda", "254:0", "1");
        let b = fs.disk("pci0000:00/ata1", "sdb", "8:16", "1");
        fs.virtual_device("md0", "9:0", &[&a, &b]);
        assert_eq!(fs.detect((9, 0)).storage(), Some(Storage::Hdd));
    }

    #[test]
    fn a_partition_of_a_rotational_disk_is_hdd() {
        let fs = Sysfs::new();
        let disk = fs.disk("pci0000:00/ata1", "sdb", "8:16", "1");
        fs.partition(&disk, "sdb1", "8:17");
        let (storage, how) = detected(fs.detect((8, 17)));
        assert_eq!(
            (storage, how.as_str()),
            (Storage::Hdd, "sdb1 on sdb, rotational=1")
        );
    }

    #[test]
    fn device_mapper_over_a_rotational_disk_is_hdd_though_dm_says_rotational_0() {
        let fs = Sysfs::new();
        let disk = fs.disk("pci0000:00/ata1", "sda", "8:0", "1");
        let part = fs.partition(&disk, "sda2", "8:2");
        fs.virtual_device("dm-0", "253:0", &[&part]);
        let (storage, how) = detected(fs.detect((253, 0)));
        assert_eq!(
            (storage, how.as_str()),
            (Storage::Hdd, "dm-0 on sda, rotational=1")
        );
    }

    #[test]
    fn md_raid_over_one_spinning_and_one_solid_disk_is_hdd_and_lvm_over_md_is_followed() {
        let fs = Sysfs::new();
        let a = fs.disk("pci0000:00/ata1", "sda", "8:0", "1");
        let b = fs.disk("pci0000:00/ata2", "sdb", "8:16", "0");
        let md = fs.virtual_device("md0", "9:0", &[&a, &b]);
        fs.virtual_device("dm-1", "253:1", &[&md]);
        let (storage, how) = detected(fs.detect((253, 1)));
        assert_eq!(storage, Storage::Hdd);
        assert_eq!(how, "dm-1 on sda, sdb, rotational=1/0");
    }

    #[test]
    fn tmpfs_and_overlay_are_not_detected_and_say_why() {
        let fs = Sysfs::new();
        let mounts = parse_mountinfo(
            "25 24 0:23 / /dev/shm rw,relatime - tmpfs tmpfs rw,size=24684084k\n\
             40 1 0:40 / / rw - overlay overlay rw,lowerdir=/l,upperdir=/u\n",
        );
        let s = detect(
            Path::new("/dev/shm/pg/data"),
            (0, 23),
            fs.root(),
            &mounts,
            &|_| None,
        );
        let StorageSource::NotDetected { reason } = &s else {
            panic!("{s:?}")
        };
        assert!(
            reason.contains("tmpfs") && reason.contains("/dev/shm"),
            "{reason}"
        );
        assert!(
            s.describe(Storage::Ssd)
                .starts_with("storage: ssd (default; not detected: "),
            "{}",
            s.describe(Storage::Ssd)
        );
        let s = detect(
            Path::new("/var/lib/pg"),
            (0, 40),
            fs.root(),
            &mounts,
            &|_| None,
        );
        assert!(matches!(&s, StorageSource::NotDetected { reason } if reason.contains("overlay")));
        let s = detect(Path::new("/x"), (0, 99), fs.root(), &mounts, &|_| None);
        assert!(
            matches!(&s, StorageSource::NotDetected { reason } if reason.contains("no block device"))
        );
    }

    #[test]
    fn btrfs_with_an_anonymous_device_number_follows_its_mount_source() {
        let fs = Sysfs::new();
        let disk = fs.disk("pci0000:00/nvme/nvme0", "nvme0n1", "259:0", "0");
        fs.partition(&disk, "nvme0n1p3", "259:3");
        let mounts = parse_mountinfo(
            "30 1 0:31 /@ / rw,relatime shared:1 - btrfs /dev/nvme0n1p3 rw,ssd,subvol=/@\n",
        );
        let rdev = |p: &Path| (p == Path::new("/dev/nvme0n1p3")).then_some((259, 3));
        let s = detect(
            Path::new("/var/lib/postgresql"),
            (0, 31),
            fs.root(),
            &mounts,
            &rdev,
        );
        assert_eq!(detected(s).0, Storage::Nvme);
    }

    #[test]
    fn an_unknown_device_and_an_unreadable_rotational_flag_are_not_detected() {
        let fs = Sysfs::new();
        assert!(matches!(
            fs.detect((8, 0)),
            StorageSource::NotDetected { .. }
        ));
        let dir = fs.disk("pci0000:00/ata1", "sdc", "8:32", "1");
        fs::remove_file(dir.join("queue/rotational")).unwrap();
        let s = fs.detect((8, 32));
        assert!(
            matches!(&s, StorageSource::NotDetected { reason } if reason.contains("sdc")),
            "{s:?}"
        );
    }

    #[test]
    fn mountinfo_paths_with_spaces_are_unescaped() {
        let m = parse_mountinfo("50 1 8:1 / /mnt/my\\040disk rw - ext4 /dev/sda1 rw\n");
        assert_eq!(m[0].mount_point, PathBuf::from("/mnt/my disk"));
        assert_eq!((m[0].dev, m[0].fstype.as_str()), ((8, 1), "ext4"));
        let inner = mount_of(&m, (8, 1), Path::new("/mnt/my disk/pg"));
        assert_eq!(inner.map(|m| m.source.as_str()), Some("/dev/sda1"));
    }

    #[test]
    fn flag_and_detection_are_described_for_the_report() {
        assert_eq!(
            StorageSource::Flag.describe(Storage::San),
            "storage: san (--storage)"
        );
    }
}
