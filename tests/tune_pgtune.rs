//! PGTune parity: `--method pgtune` must print exactly PGTune's settings, in its order and
//! units. Every expected value below was worked out by hand from the rules in
//! shared/reference/pgtune-rules.md (kB maths, floor at each step), not taken from the code.
//! Notation: RAM and SB in kB; W = max_worker_processes used by work_mem (CPUs if >= 4, else 8).

use pgopt::tune::pgtune::{pgtune, DbType};
use pgopt::tune::{DataSize, Memory, MemoryUnit, Os, Profile, RawInput, Storage, TuneInput};

#[allow(clippy::too_many_arguments)]
fn input(
    memory: &str,
    profile: Profile,
    os: Os,
    storage: Storage,
    cpus: Option<u32>,
    connections: Option<u32>,
    pg_version: u32,
    data_size: DataSize,
) -> TuneInput {
    TuneInput::validate(&RawInput {
        memory: Some(memory.into()),
        cpus,
        connections,
        pg_version: Some(pg_version),
        os: Some(os),
        profile: Some(profile),
        storage: Some(storage),
        data_size: Some(data_size),
    })
    .expect("valid input")
}

fn check(input: &TuneInput, expected: &[(&str, &str)]) -> Vec<String> {
    let out = pgtune(input);
    let got: Vec<(&str, &str)> = out.pairs();
    assert_eq!(got, expected, "input: {input:?}");
    out.warnings
}

use DataSize::{LessThanRam as Less, MoreThan3xRam as More, UpTo3xRam as Mid};
use Os::{Linux, Mac, Windows};
use Profile::{Desktop, Dw, Governance, Mixed, Oltp, Web};
use Storage::{Hdd, Nvme, San, Ssd};

#[test]
fn web_16gb_linux_ssd_8cpus_pg18_mid() {
    // RAM 16777216; SB = RAM/4 = 4194304 = 4GB; ECS = RAM*3/4 = 12582912 = 12GB;
    // mwm = RAM/16 = 1048576 = 1GB; wal = 3*SB/100 = 125829 -> cap 16MB;
    // work_mem = (16777216-4194304)/((200+8)*3) = 12582912/624 = 20164.9 -> 20164kB;
    // SB >= 2GB -> huge_pages try; 8 CPUs: gather ceil(8/2)=4, maintenance 4.
    let w = check(
        &input("16GB", Web, Linux, Ssd, Some(8), None, 18, Mid),
        &[
            ("max_connections", "200"),
            ("shared_buffers", "4GB"),
            ("effective_cache_size", "12GB"),
            ("maintenance_work_mem", "1GB"),
            ("checkpoint_completion_target", "0.9"),
            ("wal_buffers", "16MB"),
            ("default_statistics_target", "100"),
            ("random_page_cost", "1.1"),
            ("effective_io_concurrency", "200"),
            ("work_mem", "20164kB"),
            ("huge_pages", "try"),
            ("jit", "off"),
            ("wal_compression", "lz4"),
            ("io_method", "io_uring"),
            ("min_wal_size", "1GB"),
            ("max_wal_size", "4GB"),
            ("max_worker_processes", "8"),
            ("max_parallel_workers_per_gather", "4"),
            ("max_parallel_workers", "8"),
            ("max_parallel_maintenance_workers", "4"),
        ],
    );
    assert_eq!(w.len(), 2, "{w:?}"); // lz4 and io_uring build warnings
    assert!(w[0].contains("lz4") && w[1].contains("io_uring"), "{w:?}");
}

#[test]
fn desktop_512mb_linux_hdd_pg10_less_ram_minimum_memory() {
    // RAM 524288; SB = RAM/16 = 32768 = 32MB; ECS = RAM/4 = 131072 = 128MB;
    // mwm = RAM/16 = 32768 = 32MB; wal = 3*32768/100 = 983.04 -> 983kB;
    // less_ram -> rpc 1.1 even on hdd; eic hdd 2;
    // work_mem = (524288-32768)/((20+8)*3) = 5851.4; /6 = 975.2 -> 975; *1.3 = 1267.5 -> 1267;
    //   below 4096 -> 4MB. PG10: no jit, wal_compression on, no io_method.
    let w = check(
        &input("512MB", Desktop, Linux, Hdd, None, None, 10, Less),
        &[
            ("max_connections", "20"),
            ("shared_buffers", "32MB"),
            ("effective_cache_size", "128MB"),
            ("maintenance_work_mem", "32MB"),
            ("checkpoint_completion_target", "0.9"),
            ("wal_buffers", "983kB"),
            ("default_statistics_target", "100"),
            ("random_page_cost", "1.1"),
            ("effective_io_concurrency", "2"),
            ("work_mem", "4MB"),
            ("huge_pages", "off"),
            ("wal_compression", "on"),
            ("min_wal_size", "100MB"),
            ("max_wal_size", "2GB"),
            ("wal_level", "minimal"),
            ("max_wal_senders", "0"),
        ],
    );
    assert!(w.is_empty(), "{w:?}");
}

#[test]
fn wal_buffers_below_32kb_becomes_32kb() {
    // Below PGTune's form minimum, built directly to reach the rule: RAM 1MB = 1024kB;
    // desktop SB = 1024/16 = 64kB; wal = 3*64/100 = 1.92 -> 1 -> raised to 32kB.
    // ECS = 256kB; mwm = 64kB; work_mem = (1024-64)/(28*3) = 11.4; /6 = 1 -> 4MB.
    let i = TuneInput {
        pg_version: 18,
        os: Linux,
        profile: Desktop,
        memory: Memory {
            amount: 1,
            unit: MemoryUnit::Mb,
        },
        cpus: None,
        connections: None,
        storage: Ssd,
        data_size: Mid,
    };
    let w = check(
        &i,
        &[
            ("max_connections", "20"),
            ("shared_buffers", "64kB"),
            ("effective_cache_size", "256kB"),
            ("maintenance_work_mem", "64kB"),
            ("checkpoint_completion_target", "0.9"),
            ("wal_buffers", "32kB"),
            ("default_statistics_target", "100"),
            ("random_page_cost", "1.1"),
            ("effective_io_concurrency", "200"),
            ("work_mem", "4MB"),
            ("huge_pages", "off"),
            ("wal_compression", "lz4"),
            ("io_method", "io_uring"),
            ("min_wal_size", "100MB"),
            ("max_wal_size", "2GB"),
            ("wal_level", "minimal"),
            ("max_wal_senders", "0"),
        ],
    );
    assert!(w[0].contains("low memory"), "{w:?}");
}

#[test]
fn web_2gb_windows_hdd_2cpus_pg17_more_wal_buffers_round_up_to_16mb() {
    // RAM 2097152; SB = 524288 = 512MB; ECS = 1572864 = 1536MB (no "nice" unit);
    // mwm = 131072 = 128MB; wal = 3*524288/100 = 15728.6 -> 15728 (14MB < w < 16MB) -> 16MB;
    // more_than_3x + hdd -> rpc 4; windows: no eic;
    // work_mem = (2097152-524288)/((50+8)*3) = 1572864/174 = 9039.4 -> 9039; *0.9 = 8135.1 -> 8135kB.
    check(
        &input("2GB", Web, Windows, Hdd, Some(2), Some(50), 17, More),
        &[
            ("max_connections", "50"),
            ("shared_buffers", "512MB"),
            ("effective_cache_size", "1536MB"),
            ("maintenance_work_mem", "128MB"),
            ("checkpoint_completion_target", "0.9"),
            ("wal_buffers", "16MB"),
            ("default_statistics_target", "100"),
            ("random_page_cost", "4"),
            ("work_mem", "8135kB"),
            ("huge_pages", "off"),
            ("jit", "off"),
            ("wal_compression", "lz4"),
            ("min_wal_size", "1GB"),
            ("max_wal_size", "4GB"),
        ],
    );
}

#[test]
fn oltp_1536mb_mac_nvme_4cpus_pg16_less_ram() {
    // RAM 1572864; SB = 393216 = 384MB; ECS = 1179648 = 1152MB; mwm = 98304 = 96MB;
    // wal = 3*393216/100 = 11796.48 -> 11796kB (no rounding: below 14MB);
    // mac: no eic, huge_pages off; W = 4:
    // work_mem = (1572864-393216)/((300+4)*3) = 1179648/912 = 1293.5 -> 1293; *1.3 = 1680.9 -> 1680 -> 4MB.
    check(
        &input("1536MB", Oltp, Mac, Nvme, Some(4), None, 16, Less),
        &[
            ("max_connections", "300"),
            ("shared_buffers", "384MB"),
            ("effective_cache_size", "1152MB"),
            ("maintenance_work_mem", "96MB"),
            ("checkpoint_completion_target", "0.9"),
            ("wal_buffers", "11796kB"),
            ("default_statistics_target", "100"),
            ("random_page_cost", "1.1"),
            ("work_mem", "4MB"),
            ("huge_pages", "off"),
            ("jit", "off"),
            ("wal_compression", "lz4"),
            ("min_wal_size", "2GB"),
            ("max_wal_size", "8GB"),
            ("max_worker_processes", "4"),
            ("max_parallel_workers_per_gather", "2"),
            ("max_parallel_workers", "4"),
            ("max_parallel_maintenance_workers", "2"),
        ],
    );
}

#[test]
fn web_256gb_linux_nvme_64cpus_pg18_mwm_capped_at_8gb() {
    // RAM 268435456; SB = 67108864 = 64GB; ECS = 201326592 = 192GB;
    // mwm = RAM/16 = 16777216 = 16GB >= 8GB -> 8GB; autovacuum_work_mem 2GB;
    // work_mem = (268435456-67108864)/((500+64)*3) = 201326592/1692 = 118987.3 -> 118987kB;
    // 64 CPUs: autovacuum_max_workers 5, gather capped 4, maintenance capped 4.
    let w = check(
        &input("256GB", Web, Linux, Nvme, Some(64), Some(500), 18, Mid),
        &[
            ("max_connections", "500"),
            ("shared_buffers", "64GB"),
            ("effective_cache_size", "192GB"),
            ("maintenance_work_mem", "8GB"),
            ("checkpoint_completion_target", "0.9"),
            ("wal_buffers", "16MB"),
            ("default_statistics_target", "100"),
            ("random_page_cost", "1.1"),
            ("effective_io_concurrency", "1000"),
            ("work_mem", "118987kB"),
            ("huge_pages", "try"),
            ("jit", "off"),
            ("wal_compression", "lz4"),
            ("autovacuum_max_workers", "5"),
            ("autovacuum_work_mem", "2GB"),
            ("io_method", "io_uring"),
            ("min_wal_size", "1GB"),
            ("max_wal_size", "4GB"),
            ("max_worker_processes", "64"),
            ("max_parallel_workers_per_gather", "4"),
            ("max_parallel_workers", "64"),
            ("max_parallel_maintenance_workers", "4"),
        ],
    );
    assert!(w[0].contains("very high memory"), "{w:?}");
}

#[test]
fn dw_64gb_windows_san_16cpus_pg17_mwm_2047mb_and_dw_warning() {
    // RAM 67108864; SB = 16777216 = 16GB; ECS = 50331648 = 48GB;
    // mwm = RAM/8 = 8388608 >= 2GB (Windows PG<=17 cap) -> 2GB-1MB = 2096128 = 2047MB;
    // 2047MB < 2GB -> no autovacuum_work_mem; dw, san, mid -> rpc 4; dst 500; no jit (dw);
    // work_mem = (67108864-16777216)/((40+16)*3) = 50331648/168 = 299593.1; /2 = 149796.6 -> 149796kB;
    // 16 CPUs: autovacuum_max_workers 4; dw gather ceil(16/2) = 8 uncapped; maintenance 4.
    let w = check(
        &input("64GB", Dw, Windows, San, Some(16), None, 17, Mid),
        &[
            ("max_connections", "40"),
            ("shared_buffers", "16GB"),
            ("effective_cache_size", "48GB"),
            ("maintenance_work_mem", "2047MB"),
            ("checkpoint_completion_target", "0.9"),
            ("wal_buffers", "16MB"),
            ("default_statistics_target", "500"),
            ("random_page_cost", "4"),
            ("work_mem", "149796kB"),
            ("huge_pages", "try"),
            ("wal_compression", "lz4"),
            ("autovacuum_max_workers", "4"),
            ("min_wal_size", "4GB"),
            ("max_wal_size", "16GB"),
            ("max_worker_processes", "16"),
            ("max_parallel_workers_per_gather", "8"),
            ("max_parallel_workers", "16"),
            ("max_parallel_maintenance_workers", "4"),
        ],
    );
    assert!(w.iter().any(|x| x.contains("SAN storage")), "{w:?}");
}

#[test]
fn dw_256gb_windows_ssd_32cpus_pg18_more_caps_at_8gb_and_io_workers() {
    // RAM 268435456; SB 64GB; ECS 192GB; mwm = RAM/8 = 32GB -> 8GB (Windows PG18: 8GB cap);
    // work_mem = (268435456-67108864)/((40+32)*3) = 201326592/216 = 932067.6; /2 = 466033.8
    //   -> 466033; *0.9 = 419429.7 -> 419429kB (no Windows cap on 18);
    // io_method worker (windows), io_workers = min(32, max(3, 32/4 = 8)) = 8.
    check(
        &input("256GB", Dw, Windows, Ssd, Some(32), None, 18, More),
        &[
            ("max_connections", "40"),
            ("shared_buffers", "64GB"),
            ("effective_cache_size", "192GB"),
            ("maintenance_work_mem", "8GB"),
            ("checkpoint_completion_target", "0.9"),
            ("wal_buffers", "16MB"),
            ("default_statistics_target", "500"),
            ("random_page_cost", "4"),
            ("work_mem", "419429kB"),
            ("huge_pages", "try"),
            ("wal_compression", "lz4"),
            ("autovacuum_max_workers", "5"),
            ("autovacuum_work_mem", "2GB"),
            ("io_method", "worker"),
            ("io_workers", "8"),
            ("min_wal_size", "4GB"),
            ("max_wal_size", "16GB"),
            ("max_worker_processes", "32"),
            ("max_parallel_workers_per_gather", "16"),
            ("max_parallel_workers", "32"),
            ("max_parallel_maintenance_workers", "4"),
        ],
    );
}

#[test]
fn oltp_1tb_windows_ssd_pg14_less_ram_work_mem_capped_at_2047mb() {
    // RAM 1073741824; SB 268435456 = 256GB; ECS 805306368 = 768GB; mwm 64GB -> 2047MB;
    // work_mem = 805306368/((20+8)*3) = 9586980.6 -> 9586980; *1.3 = 12463074 > 2096128 -> 2047MB.
    // PG14: wal_compression on; no CPUs: nothing parallel, no autovacuum_max_workers.
    check(
        &input("1TB", Oltp, Windows, Ssd, None, Some(20), 14, Less),
        &[
            ("max_connections", "20"),
            ("shared_buffers", "256GB"),
            ("effective_cache_size", "768GB"),
            ("maintenance_work_mem", "2047MB"),
            ("checkpoint_completion_target", "0.9"),
            ("wal_buffers", "16MB"),
            ("default_statistics_target", "100"),
            ("random_page_cost", "1.1"),
            ("work_mem", "2047MB"),
            ("huge_pages", "try"),
            ("jit", "off"),
            ("wal_compression", "on"),
            ("min_wal_size", "2GB"),
            ("max_wal_size", "8GB"),
        ],
    );
}

#[test]
fn mixed_1tb_linux_san_1cpu_pg12_work_mem_not_capped_on_linux() {
    // RAM 1073741824; SB 256GB; ECS 768GB; mwm 64GB -> 8GB; autovacuum_work_mem 2GB;
    // work_mem = 805306368/((100+8)*3) = 2485513.5; /2 = 1242756.7 -> 1242756kB; eic san 300.
    check(
        &input("1TB", Mixed, Linux, San, Some(1), None, 12, Mid),
        &[
            ("max_connections", "100"),
            ("shared_buffers", "256GB"),
            ("effective_cache_size", "768GB"),
            ("maintenance_work_mem", "8GB"),
            ("checkpoint_completion_target", "0.9"),
            ("wal_buffers", "16MB"),
            ("default_statistics_target", "100"),
            ("random_page_cost", "1.1"),
            ("effective_io_concurrency", "300"),
            ("work_mem", "1242756kB"),
            ("huge_pages", "try"),
            ("jit", "off"),
            ("wal_compression", "on"),
            ("autovacuum_work_mem", "2GB"),
            ("min_wal_size", "1GB"),
            ("max_wal_size", "4GB"),
        ],
    );
}

#[test]
fn web_4gb_linux_ssd_4cpus_pg11_no_jit_before_12() {
    // RAM 4194304; SB 1048576 = 1GB; ECS 3GB; mwm 262144 = 256MB; wal 31457 -> 16MB;
    // work_mem = (4194304-1048576)/((200+4)*3) = 3145728/612 = 5140.08 -> 5140kB;
    // SB 1GB < 2GB -> huge_pages off; PG11: no jit, wal_compression on, maintenance workers yes.
    check(
        &input("4GB", Web, Linux, Ssd, Some(4), None, 11, Mid),
        &[
            ("max_connections", "200"),
            ("shared_buffers", "1GB"),
            ("effective_cache_size", "3GB"),
            ("maintenance_work_mem", "256MB"),
            ("checkpoint_completion_target", "0.9"),
            ("wal_buffers", "16MB"),
            ("default_statistics_target", "100"),
            ("random_page_cost", "1.1"),
            ("effective_io_concurrency", "200"),
            ("work_mem", "5140kB"),
            ("huge_pages", "off"),
            ("wal_compression", "on"),
            ("min_wal_size", "1GB"),
            ("max_wal_size", "4GB"),
            ("max_worker_processes", "4"),
            ("max_parallel_workers_per_gather", "2"),
            ("max_parallel_workers", "4"),
            ("max_parallel_maintenance_workers", "2"),
        ],
    );
}

#[test]
fn oltp_8gb_linux_hdd_6cpus_pg10_more_no_maintenance_workers_before_11() {
    // RAM 8388608; SB 2097152 = 2GB (exactly the huge_pages threshold -> try); ECS 6GB;
    // mwm 524288 = 512MB; rpc hdd 4; eic 2;
    // work_mem = (8388608-2097152)/((300+6)*3) = 6291456/918 = 6853.4 -> 6853; *0.9 = 6167.7 -> 6167kB;
    // gather ceil(6/2) = 3; PG10: max_parallel_workers yes, maintenance workers no.
    check(
        &input("8GB", Oltp, Linux, Hdd, Some(6), None, 10, More),
        &[
            ("max_connections", "300"),
            ("shared_buffers", "2GB"),
            ("effective_cache_size", "6GB"),
            ("maintenance_work_mem", "512MB"),
            ("checkpoint_completion_target", "0.9"),
            ("wal_buffers", "16MB"),
            ("default_statistics_target", "100"),
            ("random_page_cost", "4"),
            ("effective_io_concurrency", "2"),
            ("work_mem", "6167kB"),
            ("huge_pages", "try"),
            ("wal_compression", "on"),
            ("min_wal_size", "2GB"),
            ("max_wal_size", "8GB"),
            ("max_worker_processes", "6"),
            ("max_parallel_workers_per_gather", "3"),
            ("max_parallel_workers", "6"),
        ],
    );
}

#[test]
fn web_8191mb_linux_ssd_pg13_odd_sizes_stay_in_kb_and_huge_pages_off_below_2gb() {
    // RAM 8191*1024 = 8387584; SB = 2096896 (2047.75MB: not whole MB) -> 2096896kB, < 2GB -> off;
    // ECS = 8387584*3/4 = 6290688 (6143.25MB) -> 6290688kB; mwm = 524224 (511.94MB) -> 524224kB;
    // work_mem = (8387584-2096896)/((200+8)*3) = 6290688/624 = 10081.2 -> 10081kB.
    check(
        &input("8191MB", Web, Linux, Ssd, None, None, 13, Mid),
        &[
            ("max_connections", "200"),
            ("shared_buffers", "2096896kB"),
            ("effective_cache_size", "6290688kB"),
            ("maintenance_work_mem", "524224kB"),
            ("checkpoint_completion_target", "0.9"),
            ("wal_buffers", "16MB"),
            ("default_statistics_target", "100"),
            ("random_page_cost", "1.1"),
            ("effective_io_concurrency", "200"),
            ("work_mem", "10081kB"),
            ("huge_pages", "off"),
            ("jit", "off"),
            ("wal_compression", "on"),
            ("min_wal_size", "1GB"),
            ("max_wal_size", "4GB"),
        ],
    );
}

#[test]
fn mixed_32gb_mac_ssd_16cpus_pg18_io_worker_and_huge_pages_off() {
    // RAM 33554432; SB 8GB; ECS 24GB; mwm = 2097152 = 2GB (>= 2GB -> autovacuum_work_mem 2GB);
    // mac: no eic, huge_pages off even with SB 8GB, io_method worker, io_workers 16/4 = 4 (> 3);
    // work_mem = (33554432-8388608)/((100+16)*3) = 25165824/348 = 72315.6; /2 = 36157.8 -> 36157kB.
    check(
        &input("32GB", Mixed, Mac, Ssd, Some(16), None, 18, Mid),
        &[
            ("max_connections", "100"),
            ("shared_buffers", "8GB"),
            ("effective_cache_size", "24GB"),
            ("maintenance_work_mem", "2GB"),
            ("checkpoint_completion_target", "0.9"),
            ("wal_buffers", "16MB"),
            ("default_statistics_target", "100"),
            ("random_page_cost", "1.1"),
            ("work_mem", "36157kB"),
            ("huge_pages", "off"),
            ("jit", "off"),
            ("wal_compression", "lz4"),
            ("autovacuum_max_workers", "4"),
            ("autovacuum_work_mem", "2GB"),
            ("io_method", "worker"),
            ("io_workers", "4"),
            ("min_wal_size", "1GB"),
            ("max_wal_size", "4GB"),
            ("max_worker_processes", "16"),
            ("max_parallel_workers_per_gather", "4"),
            ("max_parallel_workers", "16"),
            ("max_parallel_maintenance_workers", "4"),
        ],
    );
}

#[test]
fn web_16gb_windows_nvme_8cpus_pg18_io_workers_omitted_at_3() {
    // io_workers = max(3, 8/4 = 2) = 3, not > 3 -> omitted; windows gets huge_pages try;
    // work_mem = 12582912/((100+8)*3) = 38836.1 -> 38836kB.
    check(
        &input("16GB", Web, Windows, Nvme, Some(8), Some(100), 18, Mid),
        &[
            ("max_connections", "100"),
            ("shared_buffers", "4GB"),
            ("effective_cache_size", "12GB"),
            ("maintenance_work_mem", "1GB"),
            ("checkpoint_completion_target", "0.9"),
            ("wal_buffers", "16MB"),
            ("default_statistics_target", "100"),
            ("random_page_cost", "1.1"),
            ("work_mem", "38836kB"),
            ("huge_pages", "try"),
            ("jit", "off"),
            ("wal_compression", "lz4"),
            ("io_method", "worker"),
            ("min_wal_size", "1GB"),
            ("max_wal_size", "4GB"),
            ("max_worker_processes", "8"),
            ("max_parallel_workers_per_gather", "4"),
            ("max_parallel_workers", "8"),
            ("max_parallel_maintenance_workers", "4"),
        ],
    );
}

#[test]
fn oltp_64gb_mac_hdd_200cpus_pg18_less_io_workers_capped_at_32() {
    // RAM 67108864; SB 16GB; ECS 48GB; mwm 4194304 = 4GB; less_ram -> rpc 1.1 despite hdd;
    // work_mem = 50331648/((1000+200)*3) = 13981.0 -> 13981; *1.3 = 18175.3 -> 18175kB;
    // io_workers = min(32, 200/4 = 50) = 32.
    check(
        &input("64GB", Oltp, Mac, Hdd, Some(200), Some(1000), 18, Less),
        &[
            ("max_connections", "1000"),
            ("shared_buffers", "16GB"),
            ("effective_cache_size", "48GB"),
            ("maintenance_work_mem", "4GB"),
            ("checkpoint_completion_target", "0.9"),
            ("wal_buffers", "16MB"),
            ("default_statistics_target", "100"),
            ("random_page_cost", "1.1"),
            ("work_mem", "18175kB"),
            ("huge_pages", "off"),
            ("jit", "off"),
            ("wal_compression", "lz4"),
            ("autovacuum_max_workers", "5"),
            ("autovacuum_work_mem", "2GB"),
            ("io_method", "worker"),
            ("io_workers", "32"),
            ("min_wal_size", "2GB"),
            ("max_wal_size", "8GB"),
            ("max_worker_processes", "200"),
            ("max_parallel_workers_per_gather", "4"),
            ("max_parallel_workers", "200"),
            ("max_parallel_maintenance_workers", "4"),
        ],
    );
}

#[test]
fn dw_128gb_linux_ssd_64cpus_pg15_less_gather_uncapped_for_dw() {
    // RAM 134217728; SB 32GB; ECS 96GB; mwm RAM/8 = 16GB -> 8GB; less_ram -> rpc 1.1, no dw warning;
    // work_mem = (134217728-33554432)/((40+64)*3) = 100663296/312 = 322638.8; /2 = 161319.4
    //   -> 161319; *1.3 = 209714.7 -> 209714kB; gather ceil(64/2) = 32 (dw: no cap of 4).
    let w = check(
        &input("128GB", Dw, Linux, Ssd, Some(64), None, 15, Less),
        &[
            ("max_connections", "40"),
            ("shared_buffers", "32GB"),
            ("effective_cache_size", "96GB"),
            ("maintenance_work_mem", "8GB"),
            ("checkpoint_completion_target", "0.9"),
            ("wal_buffers", "16MB"),
            ("default_statistics_target", "500"),
            ("random_page_cost", "1.1"),
            ("effective_io_concurrency", "200"),
            ("work_mem", "209714kB"),
            ("huge_pages", "try"),
            ("wal_compression", "lz4"),
            ("autovacuum_max_workers", "5"),
            ("autovacuum_work_mem", "2GB"),
            ("min_wal_size", "4GB"),
            ("max_wal_size", "16GB"),
            ("max_worker_processes", "64"),
            ("max_parallel_workers_per_gather", "32"),
            ("max_parallel_workers", "64"),
            ("max_parallel_maintenance_workers", "4"),
        ],
    );
    assert_eq!(w.len(), 2, "{w:?}"); // very high memory, lz4
    assert!(!w.iter().any(|x| x.contains("Data Warehouses")), "{w:?}");
}

#[test]
fn dw_16gb_linux_hdd_4cpus_pg16_mid() {
    // RAM 16777216; SB 4GB; ECS 12GB; mwm RAM/8 = 2097152 = 2GB -> autovacuum_work_mem 2GB;
    // rpc hdd 4; eic 2; work_mem = 12582912/((40+4)*3) = 95325.1; /2 = 47662.5 -> 47662kB;
    // 4 CPUs: no autovacuum_max_workers, gather 2, maintenance 2. hdd: no dw warning.
    let w = check(
        &input("16GB", Dw, Linux, Hdd, Some(4), None, 16, Mid),
        &[
            ("max_connections", "40"),
            ("shared_buffers", "4GB"),
            ("effective_cache_size", "12GB"),
            ("maintenance_work_mem", "2GB"),
            ("checkpoint_completion_target", "0.9"),
            ("wal_buffers", "16MB"),
            ("default_statistics_target", "500"),
            ("random_page_cost", "4"),
            ("effective_io_concurrency", "2"),
            ("work_mem", "47662kB"),
            ("huge_pages", "try"),
            ("wal_compression", "lz4"),
            ("autovacuum_work_mem", "2GB"),
            ("min_wal_size", "4GB"),
            ("max_wal_size", "16GB"),
            ("max_worker_processes", "4"),
            ("max_parallel_workers_per_gather", "2"),
            ("max_parallel_workers", "4"),
            ("max_parallel_maintenance_workers", "2"),
        ],
    );
    assert!(!w.iter().any(|x| x.contains("Data Warehouses")), "{w:?}");
}

#[test]
fn dw_32gb_linux_nvme_no_cpus_pg18_mid_warns_about_cost_parameters() {
    // RAM 33554432; SB 8GB; ECS 24GB; mwm RAM/8 = 4GB; rpc dw mid nvme -> 4; eic 1000;
    // work_mem = 25165824/((40+8)*3) = 174762.7; /2 = 87381.3 -> 87381kB.
    let w = check(
        &input("32GB", Dw, Linux, Nvme, None, None, 18, Mid),
        &[
            ("max_connections", "40"),
            ("shared_buffers", "8GB"),
            ("effective_cache_size", "24GB"),
            ("maintenance_work_mem", "4GB"),
            ("checkpoint_completion_target", "0.9"),
            ("wal_buffers", "16MB"),
            ("default_statistics_target", "500"),
            ("random_page_cost", "4"),
            ("effective_io_concurrency", "1000"),
            ("work_mem", "87381kB"),
            ("huge_pages", "try"),
            ("wal_compression", "lz4"),
            ("autovacuum_work_mem", "2GB"),
            ("io_method", "io_uring"),
            ("min_wal_size", "4GB"),
            ("max_wal_size", "16GB"),
        ],
    );
    assert_eq!(w.len(), 3, "{w:?}");
    assert!(w[2].contains("Data Warehouses on NVMe drives"), "{w:?}");
}

#[test]
fn desktop_16gb_linux_nvme_16cpus_pg18_more() {
    // RAM 16777216; SB = RAM/16 = 1GB (< 2GB -> off); ECS = RAM/4 = 4GB; mwm = 1GB;
    // wal = 31457 -> 16MB; rpc 1.1 (nvme, not dw); eic 1000;
    // work_mem = (16777216-1048576)/((20+16)*3) = 15728640/108 = 145635.6; /6 = 24272.6 -> 24272;
    //   *0.9 = 21844.8 -> 21844kB; 16 CPUs -> autovacuum_max_workers 4.
    check(
        &input("16GB", Desktop, Linux, Nvme, Some(16), None, 18, More),
        &[
            ("max_connections", "20"),
            ("shared_buffers", "1GB"),
            ("effective_cache_size", "4GB"),
            ("maintenance_work_mem", "1GB"),
            ("checkpoint_completion_target", "0.9"),
            ("wal_buffers", "16MB"),
            ("default_statistics_target", "100"),
            ("random_page_cost", "1.1"),
            ("effective_io_concurrency", "1000"),
            ("work_mem", "21844kB"),
            ("huge_pages", "off"),
            ("wal_compression", "lz4"),
            ("autovacuum_max_workers", "4"),
            ("io_method", "io_uring"),
            ("min_wal_size", "100MB"),
            ("max_wal_size", "2GB"),
            ("max_worker_processes", "16"),
            ("max_parallel_workers_per_gather", "4"),
            ("max_parallel_workers", "16"),
            ("max_parallel_maintenance_workers", "4"),
            ("wal_level", "minimal"),
            ("max_wal_senders", "0"),
        ],
    );
}

#[test]
fn desktop_4gb_windows_ssd_2cpus_pg17_less() {
    // RAM 4194304; SB = 262144 = 256MB; ECS = 1GB; mwm = 256MB; wal = 7864.32 -> 7864kB;
    // work_mem = (4194304-262144)/((25+8)*3) = 3932160/99 = 39718.8; /6 = 6619.8 -> 6619;
    //   *1.3 = 8604.7 -> 8604kB.
    check(
        &input("4GB", Desktop, Windows, Ssd, Some(2), Some(25), 17, Less),
        &[
            ("max_connections", "25"),
            ("shared_buffers", "256MB"),
            ("effective_cache_size", "1GB"),
            ("maintenance_work_mem", "256MB"),
            ("checkpoint_completion_target", "0.9"),
            ("wal_buffers", "7864kB"),
            ("default_statistics_target", "100"),
            ("random_page_cost", "1.1"),
            ("work_mem", "8604kB"),
            ("huge_pages", "off"),
            ("wal_compression", "lz4"),
            ("min_wal_size", "100MB"),
            ("max_wal_size", "2GB"),
            ("wal_level", "minimal"),
            ("max_wal_senders", "0"),
        ],
    );
}

#[test]
fn governance_is_computed_as_oltp_with_a_note() {
    // As oltp: max_connections 300; work_mem = 12582912/((300+8)*3) = 13617.9 -> 13617kB;
    // min/max_wal_size 2GB/8GB.
    let i = input("16GB", Governance, Linux, Ssd, Some(8), None, 18, Mid);
    check(
        &i,
        &[
            ("max_connections", "300"),
            ("shared_buffers", "4GB"),
            ("effective_cache_size", "12GB"),
            ("maintenance_work_mem", "1GB"),
            ("checkpoint_completion_target", "0.9"),
            ("wal_buffers", "16MB"),
            ("default_statistics_target", "100"),
            ("random_page_cost", "1.1"),
            ("effective_io_concurrency", "200"),
            ("work_mem", "13617kB"),
            ("huge_pages", "try"),
            ("jit", "off"),
            ("wal_compression", "lz4"),
            ("io_method", "io_uring"),
            ("min_wal_size", "2GB"),
            ("max_wal_size", "8GB"),
            ("max_worker_processes", "8"),
            ("max_parallel_workers_per_gather", "4"),
            ("max_parallel_workers", "8"),
            ("max_parallel_maintenance_workers", "4"),
        ],
    );
    let out = pgtune(&i);
    assert_eq!(out.db_type, DbType::Oltp);
    assert!(out.notes[0].contains("oltp"), "{:?}", out.notes);
}

#[test]
fn web_32gb_linux_san_31cpus_pg14_autovacuum_workers_4_below_32_cpus() {
    // RAM 33554432; SB 8GB; ECS 24GB; mwm 2GB -> autovacuum_work_mem 2GB; eic san 300;
    // work_mem = 25165824/((200+31)*3) = 36314.3 -> 36314kB; 31 CPUs -> 4 autovacuum workers;
    // gather ceil(31/2) = 16 -> 4.
    check(
        &input("32GB", Web, Linux, San, Some(31), None, 14, Mid),
        &[
            ("max_connections", "200"),
            ("shared_buffers", "8GB"),
            ("effective_cache_size", "24GB"),
            ("maintenance_work_mem", "2GB"),
            ("checkpoint_completion_target", "0.9"),
            ("wal_buffers", "16MB"),
            ("default_statistics_target", "100"),
            ("random_page_cost", "1.1"),
            ("effective_io_concurrency", "300"),
            ("work_mem", "36314kB"),
            ("huge_pages", "try"),
            ("jit", "off"),
            ("wal_compression", "on"),
            ("autovacuum_max_workers", "4"),
            ("autovacuum_work_mem", "2GB"),
            ("min_wal_size", "1GB"),
            ("max_wal_size", "4GB"),
            ("max_worker_processes", "31"),
            ("max_parallel_workers_per_gather", "4"),
            ("max_parallel_workers", "31"),
            ("max_parallel_maintenance_workers", "4"),
        ],
    );
}

#[test]
fn mixed_2gb_linux_ssd_15cpus_pg13_less_no_autovacuum_workers_below_16() {
    // RAM 2097152; SB 512MB; ECS 1536MB; mwm 128MB; wal 15728 -> 16MB;
    // work_mem = 1572864/((100+15)*3) = 4559.0; /2 = 2279.5 -> 2279; *1.3 = 2962.7 -> 2962 -> 4MB.
    check(
        &input("2GB", Mixed, Linux, Ssd, Some(15), None, 13, Less),
        &[
            ("max_connections", "100"),
            ("shared_buffers", "512MB"),
            ("effective_cache_size", "1536MB"),
            ("maintenance_work_mem", "128MB"),
            ("checkpoint_completion_target", "0.9"),
            ("wal_buffers", "16MB"),
            ("default_statistics_target", "100"),
            ("random_page_cost", "1.1"),
            ("effective_io_concurrency", "200"),
            ("work_mem", "4MB"),
            ("huge_pages", "off"),
            ("jit", "off"),
            ("wal_compression", "on"),
            ("min_wal_size", "1GB"),
            ("max_wal_size", "4GB"),
            ("max_worker_processes", "15"),
            ("max_parallel_workers_per_gather", "4"),
            ("max_parallel_workers", "15"),
            ("max_parallel_maintenance_workers", "4"),
        ],
    );
}

#[test]
fn web_1gb_linux_san_3cpus_pg12_more_no_parallel_below_4_cpus() {
    // RAM 1048576; SB 256MB; ECS 768MB; mwm 64MB; wal = 7864.32 -> 7864kB; eic 300;
    // 3 CPUs: W = 8; work_mem = 786432/((20+8)*3) = 9362.3 -> 9362; *0.9 = 8425.8 -> 8425kB.
    check(
        &input("1GB", Web, Linux, San, Some(3), Some(20), 12, More),
        &[
            ("max_connections", "20"),
            ("shared_buffers", "256MB"),
            ("effective_cache_size", "768MB"),
            ("maintenance_work_mem", "64MB"),
            ("checkpoint_completion_target", "0.9"),
            ("wal_buffers", "7864kB"),
            ("default_statistics_target", "100"),
            ("random_page_cost", "1.1"),
            ("effective_io_concurrency", "300"),
            ("work_mem", "8425kB"),
            ("huge_pages", "off"),
            ("jit", "off"),
            ("wal_compression", "on"),
            ("min_wal_size", "1GB"),
            ("max_wal_size", "4GB"),
        ],
    );
}

#[test]
fn web_512mb_mac_ssd_no_cpus_pg18_io_method_worker_without_io_workers() {
    // RAM 524288; SB 131072 = 128MB; ECS 393216 = 384MB; mwm 32768 = 32MB;
    // wal = 3932.16 -> 3932kB; work_mem = 393216/((200+8)*3) = 630.2 -> 630 -> 4MB;
    // no CPUs -> no io_workers.
    check(
        &input("512MB", Web, Mac, Ssd, None, None, 18, Mid),
        &[
            ("max_connections", "200"),
            ("shared_buffers", "128MB"),
            ("effective_cache_size", "384MB"),
            ("maintenance_work_mem", "32MB"),
            ("checkpoint_completion_target", "0.9"),
            ("wal_buffers", "3932kB"),
            ("default_statistics_target", "100"),
            ("random_page_cost", "1.1"),
            ("work_mem", "4MB"),
            ("huge_pages", "off"),
            ("jit", "off"),
            ("wal_compression", "lz4"),
            ("io_method", "worker"),
            ("min_wal_size", "1GB"),
            ("max_wal_size", "4GB"),
        ],
    );
}

#[test]
fn oltp_1tb_linux_nvme_64cpus_pg18_mid() {
    // RAM 1073741824; SB 256GB; ECS 768GB; mwm 64GB -> 8GB;
    // work_mem = 805306368/((300+64)*3) = 737460.04 -> 737460kB.
    check(
        &input("1TB", Oltp, Linux, Nvme, Some(64), None, 18, Mid),
        &[
            ("max_connections", "300"),
            ("shared_buffers", "256GB"),
            ("effective_cache_size", "768GB"),
            ("maintenance_work_mem", "8GB"),
            ("checkpoint_completion_target", "0.9"),
            ("wal_buffers", "16MB"),
            ("default_statistics_target", "100"),
            ("random_page_cost", "1.1"),
            ("effective_io_concurrency", "1000"),
            ("work_mem", "737460kB"),
            ("huge_pages", "try"),
            ("jit", "off"),
            ("wal_compression", "lz4"),
            ("autovacuum_max_workers", "5"),
            ("autovacuum_work_mem", "2GB"),
            ("io_method", "io_uring"),
            ("min_wal_size", "2GB"),
            ("max_wal_size", "8GB"),
            ("max_worker_processes", "64"),
            ("max_parallel_workers_per_gather", "4"),
            ("max_parallel_workers", "64"),
            ("max_parallel_maintenance_workers", "4"),
        ],
    );
}

/// Memory so large that PGTune's formulas exceed what PostgreSQL accepts: the values are
/// capped at each setting's maximum, with a note, so that an apply is not refused.
#[test]
fn memory_settings_above_the_server_maximum_are_capped_with_a_note() {
    let i = input("4096TB", Mixed, Linux, San, Some(1), None, 15, Mid);
    let out = pgtune(&i);
    // shared_buffers: 1073741823 pages of 8kB; work_mem: 2147483647 kB; both to whole MB.
    assert_eq!(out.value("shared_buffers"), Some("8388607MB"));
    assert_eq!(out.value("work_mem"), Some("2097151MB"));
    assert_eq!(out.value("effective_cache_size"), Some("16777215MB"));
    let notes = out.notes.join("\n");
    for name in ["shared_buffers", "work_mem", "effective_cache_size"] {
        assert!(
            notes.contains(&format!("{name} = ")) && notes.contains("capped at"),
            "{name}: {notes}"
        );
    }
    assert!(notes.contains("(2147483647 kB)"), "{notes}");
    // Ordinary sizes are untouched (see the PGTune cases above): no note.
    let small = pgtune(&input("16GB", Web, Linux, Ssd, Some(8), None, 18, Mid));
    assert!(
        small.notes.iter().all(|n| !n.contains("capped")),
        "{:?}",
        small.notes
    );
}
