//! `dataset_url` / `validation_dataset_url`: fetch a dataset file that is not on disk yet.
//!
//! nequip 0.6.2 gives every dataset class a `url` parameter. When the dataset's `file_name` is
//! missing, it downloads the URL into the folder of `file_name` (under the last path segment of
//! the URL, query removed; an already downloaded file of that name is reused), unpacks it there
//! when that name ends in `.zip`, and then reads `file_name` as usual. This module does the same,
//! with two differences: certificates of `https` URLs are verified (nequip switches that off),
//! and nothing half-written is ever left behind: the download and every unpacked member go to a
//! temporary file in the target folder that is renamed into place only once complete, so an
//! interrupted run leaves no file that a later run would mistake for the data.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The `url` parameter of the datasets (`dataset_url`, `validation_dataset_url`, also found as
/// `NpzDataset_url` / `ASEDataset_url` or plain `url`, like every dataset parameter).
#[crate::auto_init(crate = crate)]
#[derive(Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UrlOptions {
    /// Where to download the data from when `file_name` does not exist (`http` or `https`; a
    /// `.zip` is unpacked next to `file_name`). Default none: the file must exist.
    #[serde(default)]
    pub url: Option<String>,
}

/// A failed download or unpacking; every message names the URL and the file.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error("cannot download {url} to {}: {message}", file.display())]
    Fetch { url: String, file: PathBuf, message: String },
    #[error("cannot unpack {} (downloaded from {url}): {message}", archive.display())]
    Unpack { url: String, archive: PathBuf, message: String },
    #[error("the dataset file {} does not exist after downloading {url} ({detail})", file.display())]
    Missing { url: String, file: PathBuf, detail: String },
}

/// The name nequip saves a download under: the text after the last `/`, without a query or
/// fragment.
pub fn url_file_name(url: &str) -> &str {
    let last = url.rsplit('/').next().unwrap_or(url);
    let end = last.find(['?', '#']).unwrap_or(last.len());
    &last[..end]
}

/// Make sure `file_name` exists, downloading (and unpacking) `url` into its folder if it does
/// not. Returns whether anything was downloaded.
pub fn ensure_file(file_name: &Path, url: &str) -> Result<bool, DownloadError> {
    if file_name.exists() {
        return Ok(false);
    }
    let dir = match file_name.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = url_file_name(url);
    if name.is_empty() || name == "." || name == ".." {
        return Err(DownloadError::Fetch { url: url.into(), file: file_name.into(), message: "the URL does not end in a file name".into() });
    }
    let target = dir.join(name);
    let mut downloaded = false;
    if !target.exists() {
        std::fs::create_dir_all(&dir).map_err(|e| DownloadError::Fetch { url: url.into(), file: target.clone(), message: format!("cannot create the folder {}: {e}", dir.display()) })?;
        eprintln!("Downloading {url} to {}", target.display());
        fetch(url, &target)?;
        downloaded = true;
    }
    let mut members = Vec::new();
    if name.ends_with(".zip") {
        members = unpack_zip(&target, &dir).map_err(|message| DownloadError::Unpack { url: url.into(), archive: target.clone(), message })?;
    }
    if file_name.exists() {
        return Ok(downloaded);
    }
    let detail = if name.ends_with(".zip") {
        format!("{} holds: {}", target.display(), if members.is_empty() { "nothing".to_string() } else { members.join(", ") })
    } else {
        format!("the download was saved as {}", target.display())
    };
    Err(DownloadError::Missing { url: url.into(), file: file_name.into(), detail })
}

/// A temporary name next to `path` (hidden, with the process id), renamed to `path` when done.
fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.part{}", std::process::id()))
}

/// Write what `fill` writes into `path` through a temporary file; on error nothing is left.
fn write_atomically(path: &Path, fill: impl FnOnce(&mut std::fs::File) -> Result<(), String>) -> Result<(), String> {
    let tmp = temp_path(path);
    let result = (|| {
        let mut f = std::fs::File::create(&tmp).map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
        fill(&mut f)?;
        f.flush().and_then(|_| f.sync_all()).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
        drop(f);
        std::fs::rename(&tmp, path).map_err(|e| format!("cannot rename {} to {}: {e}", tmp.display(), path.display()))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// GET `url` into `target`. HTTP error statuses, a connection closed before `Content-Length`
/// bytes arrived and stalls (no byte for a minute) are errors.
fn fetch(url: &str, target: &Path) -> Result<(), DownloadError> {
    let err = |message: String| DownloadError::Fetch { url: url.into(), file: target.into(), message };
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(err("only http:// and https:// URLs can be downloaded".into()));
    }
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_recv_response(Some(Duration::from_secs(60)))
            .timeout_per_read(Some(Duration::from_secs(60)))
            .user_agent(concat!("nequip-rs/", env!("CARGO_PKG_VERSION")))
            .build(),
    );
    let mut response = agent.get(url).call().map_err(|e| err(e.to_string()))?;
    let expected = response.body().content_length();
    write_atomically(target, |f| {
        let mut reader = response.body_mut().as_reader();
        let mut buf = vec![0u8; 1 << 16];
        let mut got: u64 = 0;
        loop {
            let n = reader.read(&mut buf).map_err(|e| format!("after {got} bytes: {e}"))?;
            if n == 0 {
                break;
            }
            f.write_all(&buf[..n]).map_err(|e| format!("cannot write: {e}"))?;
            got += n as u64;
        }
        match expected {
            Some(len) if len != got => Err(format!("received {got} of {len} bytes")),
            _ => Ok(()),
        }
    })
    .map_err(err)
}

/// Unpack every member of the zip `archive` into `dir` (keeping its folders, like Python's
/// `ZipFile.extractall`); returns the member names. Members that already exist are kept: they
/// were written completely by an earlier run (rename), or are the user's. Names that would
/// leave `dir` (absolute, `..`) are refused.
fn unpack_zip(archive: &Path, dir: &Path) -> Result<Vec<String>, String> {
    let f = std::fs::File::open(archive).map_err(|e| e.to_string())?;
    let mut zip = zip::ZipArchive::new(std::io::BufReader::new(f)).map_err(|e| format!("not a valid zip archive: {e}"))?;
    let mut names = Vec::with_capacity(zip.len());
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).map_err(|e| format!("member {i}: {e}"))?;
        let name = entry.name().to_string();
        let rel = entry.enclosed_name().ok_or_else(|| format!("member `{name}` would be written outside {}", dir.display()))?;
        let out = dir.join(&rel);
        names.push(name.clone());
        if entry.is_dir() {
            std::fs::create_dir_all(&out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
            continue;
        }
        if out.exists() {
            continue;
        }
        if let Some(parent) = out.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        write_atomically(&out, |w| std::io::copy(&mut entry, w).map(|_| ()).map_err(|e| format!("member `{name}`: {e}")))?;
    }
    Ok(names)
}

#[cfg(test)]
#[path = "../../tests/support/loopback_http.rs"]
mod loopback_http;

#[cfg(test)]
mod tests {
    use super::loopback_http::{Reply, Server};
    use super::*;
    use std::collections::BTreeMap;

    /// A fresh temporary folder, removed when dropped.
    struct Tmp(PathBuf);
    impl std::ops::Deref for Tmp {
        type Target = PathBuf;
        fn deref(&self) -> &PathBuf {
            &self.0
        }
    }
    impl Drop for Tmp {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn tmp(tag: &str) -> Tmp {
        let d = std::env::temp_dir().join(format!("nequip-download-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Tmp(d)
    }

    fn zip_of(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let o = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
        for (name, data) in members {
            w.start_file(*name, o).unwrap();
            w.write_all(data).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    fn files(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    }

    #[test]
    fn file_names_of_urls() {
        assert_eq!(url_file_name("http://h/a/b/toluene.zip"), "toluene.zip");
        assert_eq!(url_file_name("https://h/x.npz?dl=1"), "x.npz");
        assert_eq!(url_file_name("https://h/x.npz#frag"), "x.npz");
        assert_eq!(url_file_name("https://h/"), "");
    }

    #[test]
    fn downloads_a_file_unpacks_a_zip_and_leaves_nothing_partial() {
        let npz = b"PK-pretend-npz".to_vec();
        let routes = BTreeMap::from([
            ("/data/t.npz".to_string(), Reply::Ok(npz.clone())),
            ("/data/t.zip".to_string(), Reply::Ok(zip_of(&[("t-train.npz", &npz), ("sub/t-test.npz", b"x")]))),
            ("/cut.npz".to_string(), Reply::Truncated { data: vec![1; 10], len: 1000 }),
            ("/bad.zip".to_string(), Reply::Ok(b"not a zip".to_vec())),
        ]);
        let server = Server::start_replies(routes, 8, 30);
        let base = server.url("");

        // a plain file, named by the URL
        let d = tmp("plain");
        let f = d.join("t.npz");
        assert!(ensure_file(&f, &format!("{base}/data/t.npz?x=1")).unwrap());
        assert_eq!(std::fs::read(&f).unwrap(), npz);
        // present: no request
        let before = server.requests();
        assert!(!ensure_file(&f, &format!("{base}/data/t.npz")).unwrap());
        assert_eq!(server.requests(), before);

        // a zip, unpacked next to the expected file (folders kept), the zip kept
        let d = tmp("zip");
        let f = d.join("nested").join("t-train.npz");
        assert!(ensure_file(&f, &format!("{base}/data/t.zip")).unwrap());
        assert_eq!(std::fs::read(&f).unwrap(), npz);
        assert_eq!(std::fs::read(d.join("nested/sub/t-test.npz")).unwrap(), b"x");
        assert_eq!(files(&d.join("nested")), ["sub", "t-train.npz", "t.zip"]);

        // the zip is there but does not hold the file: the message lists what it holds
        let e = ensure_file(&d.join("nested/other.npz"), &format!("{base}/data/t.zip")).unwrap_err().to_string();
        assert!(e.contains("other.npz") && e.contains("/data/t.zip") && e.contains("holds: t-train.npz, sub/t-test.npz"), "{e}");

        // 404, a connection closed early, a broken zip: errors naming URL and file, no partial file
        let d = tmp("errors");
        let e = ensure_file(&d.join("missing.npz"), &format!("{base}/missing.npz")).unwrap_err().to_string();
        assert!(e.contains(&format!("{base}/missing.npz")) && e.contains("missing.npz") && e.contains("404"), "{e}");
        let e = ensure_file(&d.join("cut.npz"), &format!("{base}/cut.npz")).unwrap_err().to_string();
        assert!(e.contains(&format!("{base}/cut.npz")) && e.contains(&d.join("cut.npz").display().to_string()), "{e}");
        assert!(files(&d).is_empty(), "{:?}", files(&d));
        let e = ensure_file(&d.join("x.npz"), &format!("{base}/bad.zip")).unwrap_err().to_string();
        assert!(e.contains("bad.zip") && e.contains("not a valid zip archive"), "{e}");
        // (the downloaded bad.zip itself is complete and kept, like nequip's download)
        assert_eq!(files(&d), ["bad.zip"]);

        // not http(s), no file name: no request at all
        let before = server.requests();
        let e = ensure_file(&d.join("y.npz"), "ftp://example.invalid/y.npz").unwrap_err().to_string();
        assert!(e.contains("only http:// and https://"), "{e}");
        assert!(ensure_file(&d.join("y.npz"), &format!("{base}/")).unwrap_err().to_string().contains("does not end in a file name"));
        assert_eq!(server.requests(), before);
    }

    #[test]
    fn zip_members_may_not_leave_the_folder() {
        let d = tmp("slip");
        let z = d.join("evil.zip");
        std::fs::write(&z, zip_of(&[("../outside.npz", b"x")])).unwrap();
        let e = unpack_zip(&z, &d.join("in")).unwrap_err();
        assert!(e.contains("outside"), "{e}");
        assert!(!d.join("outside.npz").exists());
    }
}
