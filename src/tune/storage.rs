//! The storage under the server's data directory, as the snapshot records it
//! ([`crate::snapshot::StorageSource`], detected by `collect::storage` on the machine the
//! server runs on): which kind it makes (hdd, ssd, nvme) and how the report names it. Pure.

use crate::snapshot::{BlockDevice, Disk, Storage, StorageSource};

impl BlockDevice {
    /// hdd when any physical disk spins, nvme when all are physical NVMe, else ssd (virtual
    /// disks count as ssd whatever their rotational flag says); None when no disk's
    /// rotational flag could be read and none is NVMe or virtual.
    pub fn storage(&self) -> Option<Storage> {
        let physical = |d: &&Disk| d.virtual_disk.is_none();
        if self
            .disks
            .iter()
            .filter(physical)
            .any(|d| d.rotational == Some(true))
        {
            return Some(Storage::Hdd);
        }
        if self.disks.iter().any(|d| d.virtual_disk.is_some()) {
            return Some(Storage::Ssd);
        }
        if !self.disks.is_empty() && self.disks.iter().all(|d| d.name.starts_with("nvme")) {
            return Some(Storage::Nvme);
        }
        self.disks
            .iter()
            .any(|d| d.rotational == Some(false))
            .then_some(Storage::Ssd)
    }

    /// `vda, rotational=0`; `dm-0 on sda, rotational=1`; `md0 on sda, sdb, rotational=1/0`.
    pub fn describe(&self) -> String {
        let names: Vec<&str> = self.disks.iter().map(|d| d.name.as_str()).collect();
        let mut s = self.device.clone();
        if names != [self.device.as_str()] {
            s.push_str(&format!(" on {}", names.join(", ")));
        }
        let flags: Vec<&str> = self
            .disks
            .iter()
            .map(|d| match d.rotational {
                Some(true) => "1",
                Some(false) => "0",
                None => "?",
            })
            .collect();
        s.push_str(&format!(", rotational={}", flags.join("/")));
        // The doubt matters where the flag says "spinning" (or nothing): say it there.
        for d in self
            .disks
            .iter()
            .filter(|d| d.virtual_disk.is_some() && d.rotational != Some(false))
        {
            s.push_str(&format!(
                "; {} looks virtual ({}): a virtual disk's rotational flag is unreliable, taken as ssd (give --storage if the storage under it is known)",
                d.name,
                d.virtual_disk.as_deref().unwrap_or_default()
            ));
        }
        s
    }
}

/// Where the storage input came from.
impl StorageSource {
    pub fn storage(&self) -> Option<Storage> {
        match self {
            StorageSource::Detected { storage, .. } => Some(*storage),
            _ => None,
        }
    }

    /// The report header line: `storage: ssd (detected: vda, rotational=0)`.
    pub fn describe(&self, used: Storage) -> String {
        match self {
            StorageSource::Flag => format!("storage: {used} (--storage)"),
            StorageSource::Detected { device, .. } => {
                format!("storage: {used} (detected: {})", device.describe())
            }
            StorageSource::NotDetected { reason } => format!(
                "storage: {used} (default; not detected: {reason}; give --storage if it is not {used})"
            ),
        }
    }
}
