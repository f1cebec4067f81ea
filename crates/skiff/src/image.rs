//! `skiff image`: the node's image store (`<data-dir>/images`, see `skiff_runtime::image`)
//! from the command line — import, pull, ls, inspect, rm, prune, export, tag. It opens the
//! store directly, so it works whether or not a server runs on the same data dir (the store
//! is safe to share between processes). Results go to stdout, progress to stderr: bars on a
//! terminal, plain lines otherwise.

use std::collections::HashMap;
use std::fs;
use std::io::{IsTerminal, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use skiff_runtime::cri::{AuthConfig, Image};
use skiff_runtime::image::{ImageStore, ImportOptions, Progress, ProgressFn, PullOptions, Removal};

#[derive(Args, Debug)]
pub(crate) struct ImageArgs {
    /// The data dir whose image store to use (the same as `skiff server`'s).
    #[arg(long, default_value = "/var/lib/skiff", env = "SKIFF_DATA_DIR", global = true)]
    data_dir: PathBuf,
    #[command(subcommand)]
    command: ImageCommand,
}

#[derive(Subcommand, Debug)]
enum ImageCommand {
    /// Import images from a docker-save archive, an OCI archive or an OCI layout directory
    /// (`-` reads an archive from stdin).
    Import {
        path: PathBuf,
        /// Also name the image (when the archive holds one image).
        #[arg(long, short)]
        tag: Option<String>,
    },
    /// Pull an image from a registry (plain HTTP only for loopback or --insecure-registry).
    Pull {
        image: String,
        #[arg(long, short)]
        username: Option<String>,
        #[arg(long, short, env = "SKIFF_REGISTRY_PASSWORD", hide_env_values = true)]
        password: Option<String>,
        /// Read the password from stdin.
        #[arg(long)]
        password_stdin: bool,
        /// A bearer token for the registry instead of a username and password.
        #[arg(long, env = "SKIFF_REGISTRY_TOKEN", hide_env_values = true)]
        registry_token: Option<String>,
        /// A registry (host or host:port) that may be reached over plain HTTP (repeatable).
        #[arg(long = "insecure-registry")]
        insecure_registries: Vec<String>,
        /// Layers downloaded at once.
        #[arg(long, default_value_t = 3)]
        max_concurrent_downloads: usize,
    },
    /// List images.
    #[command(alias = "list")]
    Ls {
        /// Only image ids.
        #[arg(long, short)]
        quiet: bool,
        /// Show digests.
        #[arg(long)]
        digests: bool,
        #[arg(long, short, value_enum, default_value_t = Format::Table)]
        output: Format,
    },
    /// Show everything about images, as JSON.
    Inspect {
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Remove images (a tag of an image with other tags is only untagged).
    #[command(alias = "rmi")]
    Rm {
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Remove untagged images not in use, unreferenced blobs and layers, and leftovers of
    /// interrupted operations.
    Prune,
    /// Write images as an OCI archive (with a docker manifest.json too).
    Export {
        #[arg(required = true)]
        images: Vec<String>,
        /// The archive to write; `-` writes to stdout.
        #[arg(long, short)]
        output: PathBuf,
    },
    /// Give an image another name.
    Tag { source: String, target: String },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Format {
    Table,
    Json,
}

pub(crate) fn run(args: ImageArgs) -> Result<()> {
    let store = ImageStore::open(&args.data_dir)
        .with_context(|| format!("opening the image store in {}", args.data_dir.display()))?;
    let mut out = std::io::stdout().lock();
    match args.command {
        ImageCommand::Import { path, tag } => {
            need_root("importing images")?;
            let progress = Reporter::new();
            let opts = ImportOptions { tag };
            let images = if path == Path::new("-") {
                store.import_reader(std::io::stdin().lock(), None, "stdin", &opts, Some(progress.callback()))
            } else {
                store.import(&path, &opts, Some(progress.callback()))
            };
            progress.finish();
            let images = images.with_context(|| format!("importing {}", path.display()))?;
            for i in images {
                if i.repo_tags.is_empty() {
                    writeln!(out, "Loaded image ID: {}", i.id)?;
                }
                for t in &i.repo_tags {
                    writeln!(out, "Loaded image: {t}")?;
                }
            }
        }
        ImageCommand::Pull {
            image,
            username,
            password,
            password_stdin,
            registry_token,
            insecure_registries,
            max_concurrent_downloads,
        } => {
            need_root("pulling images")?;
            let password = if password_stdin {
                let mut line = String::new();
                std::io::stdin().read_line(&mut line).context("reading the password from stdin")?;
                Some(line.trim_end_matches(['\r', '\n']).to_string())
            } else {
                password
            };
            let auth = match (username, registry_token) {
                (_, Some(token)) => Some(AuthConfig { identity_token: Some(token), ..AuthConfig::default() }),
                (Some(username), None) => Some(AuthConfig {
                    username,
                    password: password
                        .context("--username needs --password, --password-stdin or SKIFF_REGISTRY_PASSWORD")?,
                    identity_token: None,
                }),
                (None, None) => None,
            };
            let opts = PullOptions { auth, insecure_registries, max_concurrent_downloads };
            let progress = Reporter::new();
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting tokio")?;
            let result = rt.block_on(store.pull(&image, &opts, Some(progress.callback())));
            progress.finish();
            let pulled = result.with_context(|| format!("pulling {image}"))?;
            writeln!(out, "{}", pulled.id)?;
        }
        ImageCommand::Ls { quiet, digests, output } => {
            let images = store.list()?;
            match output {
                Format::Json => {
                    let v: Vec<serde_json::Value> = images.iter().map(image_json).collect();
                    serde_json::to_writer_pretty(&mut out, &v)?;
                    writeln!(out)?;
                }
                Format::Table if quiet => {
                    for i in images {
                        writeln!(out, "{}", i.id)?;
                    }
                }
                Format::Table => write_table(&mut out, &images, digests)?,
            }
        }
        ImageCommand::Inspect { images } => {
            let details = images.iter().map(|i| store.inspect(i)).collect::<Result<Vec<_>, _>>()?;
            serde_json::to_writer_pretty(&mut out, &details)?;
            writeln!(out)?;
        }
        ImageCommand::Rm { images } => {
            let mut failed = 0;
            for i in &images {
                match store.remove(i) {
                    Ok(Removal::Untagged(name)) => writeln!(out, "Untagged: {name}")?,
                    Ok(Removal::Deleted { id, freed }) => writeln!(out, "Deleted: {id} ({})", human(freed))?,
                    Err(e) => {
                        eprintln!("skiff: removing {i}: {}", e.full_message());
                        failed += 1;
                    }
                }
            }
            if failed > 0 {
                bail!("{failed} of {} images not removed", images.len());
            }
        }
        ImageCommand::Prune => {
            let r = store.prune()?;
            for id in &r.images {
                writeln!(out, "Deleted: {id}")?;
            }
            writeln!(
                out,
                "Removed {} images, {} blobs, {} layers, {} leftover temp dirs; reclaimed {}",
                r.images.len(),
                r.blobs,
                r.layers,
                r.temp_dirs,
                human(r.freed)
            )?;
        }
        ImageCommand::Export { images, output } => {
            let refs: Vec<&str> = images.iter().map(String::as_str).collect();
            if output == Path::new("-") {
                store.export(&refs, &mut out)?;
            } else {
                // Written aside and renamed, so a failed export leaves no half archive.
                let tmp = output.with_extension(format!("tmp-{}", std::process::id()));
                let file = fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
                let res = store.export(&refs, std::io::BufWriter::with_capacity(1 << 20, file));
                if let Err(e) = res {
                    let _ = fs::remove_file(&tmp);
                    return Err(e.into());
                }
                fs::rename(&tmp, &output).with_context(|| format!("writing {}", output.display()))?;
            }
        }
        ImageCommand::Tag { source, target } => store.tag(&source, &target)?,
    }
    Ok(())
}

/// Unpacking layers creates device nodes and sets owners and trusted xattrs.
fn need_root(what: &str) -> Result<()> {
    // /proc/self belongs to the process's effective uid.
    let euid = fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(0);
    if euid != 0 {
        bail!("{what} needs root (layers hold device nodes, file owners and xattrs)");
    }
    Ok(())
}

fn image_json(i: &Image) -> serde_json::Value {
    serde_json::json!({
        "id": i.id,
        "repoTags": i.repo_tags,
        "repoDigests": i.repo_digests,
        "size": i.size,
    })
}

/// crictl's columns: IMAGE, TAG, (DIGEST), IMAGE ID, SIZE; one row per tag.
fn write_table(out: &mut impl Write, images: &[Image], digests: bool) -> Result<()> {
    let mut rows = vec![{
        let mut r = vec!["IMAGE".to_string(), "TAG".into()];
        if digests {
            r.push("DIGEST".into());
        }
        r.extend(["IMAGE ID".to_string(), "SIZE".into()]);
        r
    }];
    for i in images {
        let short_id = i.id.trim_start_matches("sha256:").chars().take(13).collect::<String>();
        let mut tags: Vec<(String, String)> = i
            .repo_tags
            .iter()
            .map(|t| {
                let slash = t.rfind('/').unwrap_or(0);
                match t[slash..].rfind(':') {
                    Some(c) => (t[..slash + c].to_string(), t[slash + c + 1..].to_string()),
                    None => (t.clone(), "<none>".into()),
                }
            })
            .collect();
        if tags.is_empty() {
            let repo = i.repo_digests.first().and_then(|d| d.split('@').next()).unwrap_or("<none>");
            tags.push((repo.to_string(), "<none>".into()));
        }
        for (repo, tag) in tags {
            let mut r = vec![repo.clone(), tag];
            if digests {
                let d = i.repo_digests.iter().find(|d| d.starts_with(&format!("{repo}@"))).or(i.repo_digests.first());
                let d = d.and_then(|d| d.split('@').nth(1)).unwrap_or("<none>");
                r.push(d.trim_start_matches("sha256:").chars().take(13).collect());
            }
            r.extend([short_id.clone(), human(i.size)]);
            rows.push(r);
        }
    }
    let widths: Vec<usize> = (0..rows[0].len()).map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0)).collect();
    for r in rows {
        let line: Vec<String> = r.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        writeln!(out, "{}", line.join("   ").trim_end())?;
    }
    Ok(())
}

/// Sizes as docker and crictl print them (powers of 1000).
fn human(bytes: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1000.0 && u < units.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 { format!("{bytes}B") } else { format!("{v:.3}{}", units[u]).replace(".000", "") }
}

/// Draws progress: a bar per layer (or for the archive being read) on a terminal, plain
/// lines otherwise (logs, CI).
struct Reporter {
    bars: Option<MultiProgress>,
    state: Arc<Mutex<HashMap<String, ProgressBar>>>,
}

impl Reporter {
    fn new() -> Reporter {
        let tty = std::io::stderr().is_terminal();
        Reporter {
            bars: tty.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
            state: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    fn callback(&self) -> ProgressFn {
        let bars = self.bars.clone();
        let state = self.state.clone();
        // Plain lines report reading progress per 10%, not per chunk.
        let last_tenth = Arc::new(AtomicU64::new(u64::MAX));
        Arc::new(move |p| match &bars {
            Some(m) => draw(m, &state, p),
            None => plain(&last_tenth, p),
        })
    }

    fn finish(&self) {
        if let Ok(s) = self.state.lock() {
            for b in s.values() {
                if !b.is_finished() {
                    b.abandon();
                }
            }
        }
    }
}

fn short(digest: &str) -> String {
    digest.trim_start_matches("sha256:").chars().take(12).collect()
}

fn bar(m: &MultiProgress, state: &Mutex<HashMap<String, ProgressBar>>, key: &str, total: Option<u64>) -> ProgressBar {
    let Ok(mut s) = state.lock() else { return ProgressBar::hidden() };
    s.entry(key.to_string())
        .or_insert_with(|| {
            let b = m.add(match total {
                Some(t) => ProgressBar::new(t),
                None => ProgressBar::new_spinner(),
            });
            let style = ProgressStyle::with_template("{prefix:12} [{bar:30}] {bytes:>10}/{total_bytes:<10} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
            b.set_style(style);
            b.set_prefix(short(key));
            b
        })
        .clone()
}

fn draw(m: &MultiProgress, state: &Mutex<HashMap<String, ProgressBar>>, p: Progress) {
    match p {
        Progress::Resolved { digest, layers } => {
            let _ = m.println(format!("resolved {digest} ({layers} layers)"));
        }
        Progress::LayerExists { digest, size } => {
            let b = bar(m, state, &digest, Some(size));
            b.set_position(size);
            b.finish_with_message("already present");
        }
        Progress::Downloading { digest, done, total } => {
            let b = bar(m, state, &digest, Some(total));
            b.set_position(done);
            b.set_message(if done == total { "downloaded" } else { "downloading" });
        }
        Progress::Unpacking { digest } => bar(m, state, &digest, None).set_message("unpacking"),
        Progress::Unpacked { digest, .. } => bar(m, state, &digest, None).finish_with_message("unpacked"),
        Progress::Reading { done, total } => {
            let b = bar(m, state, "archive", total);
            b.set_position(done);
            b.set_message("reading");
            if total == Some(done) {
                b.finish_with_message("read");
            }
        }
        Progress::Done { id } => {
            let _ = m.println(format!("done: {id}"));
        }
    }
}

/// Plain lines: one per event that matters, not per chunk.
fn plain(last_tenth: &AtomicU64, p: Progress) {
    let mut err = std::io::stderr().lock();
    let _ = match p {
        Progress::Resolved { digest, layers } => writeln!(err, "resolved {digest} ({layers} layers)"),
        Progress::LayerExists { digest, .. } => writeln!(err, "{}: already present", short(&digest)),
        Progress::Downloading { digest, done: 0, total } => {
            writeln!(err, "{}: downloading {}", short(&digest), human(total))
        }
        Progress::Downloading { digest, done, total } if done == total => {
            writeln!(err, "{}: downloaded {}", short(&digest), human(total))
        }
        Progress::Downloading { .. } => Ok(()),
        Progress::Unpacking { digest } => writeln!(err, "{}: unpacking", short(&digest)),
        Progress::Unpacked { digest, size } => writeln!(err, "{}: unpacked {}", short(&digest), human(size)),
        Progress::Reading { done, total } => {
            let tenth = match total {
                Some(t) if t > 0 => done * 10 / t,
                _ => done / (100 << 20),
            };
            if last_tenth.swap(tenth, Ordering::Relaxed) == tenth {
                return;
            }
            match total {
                Some(t) if t > 0 => writeln!(err, "read {} of {} ({}%)", human(done), human(t), done * 100 / t),
                _ => writeln!(err, "read {}", human(done)),
            }
        }
        Progress::Done { id } => writeln!(err, "done: {id}"),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_docker() {
        assert_eq!(human(999), "999B");
        assert_eq!(human(2_140_000), "2.140MB");
        assert_eq!(human(5_000_000), "5MB");
    }

    #[test]
    fn table_has_a_row_per_tag() {
        let img = Image {
            id: format!("sha256:{}", "ab".repeat(32)),
            repo_tags: vec!["docker.io/library/busybox:1.36".into(), "127.0.0.1:5000/bb:latest".into()],
            repo_digests: vec![format!("127.0.0.1:5000/bb@sha256:{}", "cd".repeat(32))],
            size: 2_000_000,
            entrypoint: vec![],
            cmd: vec![],
            env: vec![],
            working_dir: None,
            user: None,
        };
        let untagged = Image { repo_tags: vec![], id: format!("sha256:{}", "ef".repeat(32)), ..img.clone() };
        let mut out = Vec::new();
        write_table(&mut out, &[img, untagged], true).unwrap();
        let s = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines.len(), 4, "{s}");
        assert!(lines[0].starts_with("IMAGE") && lines[0].contains("DIGEST") && lines[0].ends_with("SIZE"));
        assert!(
            lines[1].starts_with("docker.io/library/busybox")
                && lines[1].contains("1.36")
                && lines[1].contains("ababababababa")
        );
        assert!(
            lines[2].starts_with("127.0.0.1:5000/bb")
                && lines[2].contains("latest")
                && lines[2].contains("cdcdcdcdcdcdc")
        );
        assert!(
            lines[3].starts_with("127.0.0.1:5000/bb")
                && lines[3].contains("<none>")
                && lines[3].contains("efefefefefefe")
        );
    }
}
