//! Giving back the memory only start-up needed, so a listener that runs for days stays small,
//! and what the process has used ([`process_cpu_seconds`]).
//!
//! Planning the backbone runs a lot of tract's code once (ONNX parsing, graph rewriting,
//! pulsification) and leaves freed heap behind. Listening afterwards touches a small part of
//! the binary and its libraries. [`release_startup`] returns both to the system: freed heap
//! through glibc's `malloc_trim`, the code of the binary and of its shared libraries through
//! `madvise(MADV_DONTNEED)` and their other clean read-only pages through
//! `madvise(MADV_PAGEOUT)`; pages still in use fault back in on their next touch (the kernel
//! maps code in 64 KB blocks around each page touched, so what a pass touched costs more than
//! its size). Both calls are advice: where they do not exist (other systems, older kernels)
//! nothing happens. Done between the passes of planning too, the start-up peak stays low as
//! well.

use std::sync::atomic::{AtomicBool, Ordering};

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Lets [`release_startup`] act. The `hark` program enables it; a program that embeds the
/// library keeps its memory to itself unless it enables it too.
pub fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

/// Returns freed heap and the resident clean pages of the executable and its libraries to the
/// system, once [`enable`]d (Linux; a no-op elsewhere). Backbone planning calls it between its
/// passes, so start-up never holds the code of every pass at once; `listen` calls it once the
/// pipeline is planned and once the sound server is connected.
pub fn release_startup() {
    if !ENABLED.load(Ordering::Relaxed) {
        return;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap memory to the kernel; it takes no pointers.
    unsafe {
        libc::malloc_trim(0);
    }
    #[cfg(target_os = "linux")]
    page_out_code();
}

/// Drops this process's resident pages of every read-only file mapping: the executable's and
/// the shared libraries' code (`MADV_DONTNEED`) and their other read-only data (`MADV_PAGEOUT`).
#[cfg(target_os = "linux")]
fn page_out_code() {
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return;
    };
    for line in maps.lines() {
        // start-end perms offset dev inode path
        let mut fields = line.split_whitespace();
        let (Some(range), Some(perms)) = (fields.next(), fields.next()) else {
            continue;
        };
        let path = fields.nth(3);
        // Our executable and the shared libraries it loaded (libc, libm, ALSA, PulseAudio…):
        // every read-only mapping of a file.
        if perms.contains('w') || !path.is_some_and(|p| p.starts_with('/')) {
            continue;
        }
        let Some((a, b)) = range.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
        else {
            continue;
        };
        // Code is never written (no text relocations), so dropping this process's mapping of
        // it with MADV_DONTNEED is exact: a later touch maps the same page from the file
        // again, usually still in the page cache, so cheaply. The other read-only mappings may
        // hold pages the loader relocated before write-protecting them (RELRO); MADV_PAGEOUT
        // leaves those alone (they are anonymous copies) and only drops clean file pages.
        let advice = if perms.contains('x') {
            libc::MADV_DONTNEED
        } else {
            libc::MADV_PAGEOUT
        };
        // SAFETY: the range is one of our own read-only file mappings, whole pages as the kernel
        // listed them; see above for why each advice keeps every page's contents.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, advice);
        }
    }
}

/// CPU seconds (user + system) this process has used so far, from `/proc/self/stat`
/// (Linux; `None` elsewhere). Feeds `listen --stats` and the benchmarks.
pub fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // USER_HZ is 100 on every Linux configuration hark targets.
    Some(ticks / 100.0)
}
