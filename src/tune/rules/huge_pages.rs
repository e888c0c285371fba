//! (d2) Huge pages sized from the recommended shared_buffers.
//!
//! A rule of `--method pgopt` (see [`super`]): pure, over the snapshot; its thresholds are
//! fields of [`Thresholds`].

use super::*;

/// (d2) huge pages sized from the recommended shared_buffers: how many the host needs, and
/// huge_pages = try when the host has them.
pub(super) fn huge_pages(b: &mut Builder, snap: &Snapshot) {
    let Some(sb_kb) = b.get("shared_buffers").and_then(kb) else {
        return;
    };
    // Shared memory beyond shared_buffers (lock tables, WAL buffers, ...): what the server
    // reports now (shared_memory_size, 15+) less its shared_buffers, else about 5% + 64MB.
    let overhead_kb = match (
        snap_kb(snap, "shared_memory_size"),
        snap_kb(snap, "shared_buffers"),
    ) {
        (Some(total), Some(sb)) if total > sb => (total - sb) as u64,
        _ => sb_kb / 20 + 64 * 1024,
    };
    let host_pages = snap.host.as_ref().and_then(|h| h.huge_pages.clone());
    let page_kb = host_pages
        .as_ref()
        .map(|h| h.page_size_kb)
        .filter(|&k| k > 0)
        .unwrap_or(2048);
    let needed = (sb_kb + overhead_kb).div_ceil(page_kb);
    let current = b.get("huge_pages").unwrap_or("try").to_string();
    let sysctl = format!(
        "sysctl -w vm.nr_hugepages={needed} (and the same line in /etc/sysctl.d/ to keep it)"
    );
    match host_pages {
        Some(h) if h.total >= needed && current == "off" => {
            b.set(
                "huge_pages",
                "huge_pages",
                "try".into(),
                format!(
                    "the host has {} huge pages of {page_kb} kB; shared memory of {} MB \
                     (shared_buffers {} + {} MB) needs {needed}: fewer TLB misses, no page \
                     tables per backend",
                    h.total,
                    (sb_kb + overhead_kb) / 1024,
                    format_kb(sb_kb),
                    overhead_kb / 1024
                ),
                ev(&[
                    ("huge_pages_total", json!(h.total)),
                    ("huge_page_kb", json!(page_kb)),
                    ("shared_memory_kb", json!(sb_kb + overhead_kb)),
                    ("huge_pages_needed", json!(needed)),
                ]),
            );
        }
        Some(h) if h.total >= needed => {}
        Some(h) if current != "off" || sb_kb >= 1024 * 1024 => b.out.notes.push(format!(
            "huge pages: shared memory of {} MB (shared_buffers {} + {} MB) needs {needed} huge \
             pages of {page_kb} kB and the host has {}{}: {sysctl}",
            (sb_kb + overhead_kb) / 1024,
            format_kb(sb_kb),
            overhead_kb / 1024,
            h.total,
            if current == "try" {
                ", so huge_pages = try falls back to normal pages"
            } else {
                ""
            }
        )),
        Some(_) => {}
        None if current != "off" => b.out.notes.push(format!(
            "huge pages: shared memory of {} MB (shared_buffers {} + {} MB) needs {needed} huge \
             pages of {page_kb} kB; on the server: {sysctl}",
            (sb_kb + overhead_kb) / 1024,
            format_kb(sb_kb),
            overhead_kb / 1024
        )),
        None => {}
    }
}
