//! Which file system each photo root lives on, from `/proc/self/mountinfo`, and whether the
//! watcher can trust inotify there.
//!
//! inotify reports only what this kernel does through its VFS. On a network file system (NFS,
//! SMB, ...) or a FUSE file system, files that another machine, the FUSE daemon or the
//! server side adds produce no event at all, so the daemon polls roots on such mounts
//! instead of waiting for events that never come. This module parses the mount table, finds
//! the mount a path is on ([`mount_of`]) and classifies its type ([`is_network_fs`]).
//!
//! May not: mount, unmount or stat anything on the mounts it lists, open network
//! connections, read anything but `/proc/self/mountinfo` (and, in [`is_network_path`], the
//! path's own ancestors to resolve symbolic links), decide polling intervals, or panic on
//! any input: a line it cannot parse is skipped.

use std::ffi::OsString;
use std::io;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

/// Where the kernel lists this process's mounts.
pub const MOUNTINFO: &str = "/proc/self/mountinfo";

/// One line of `/proc/self/mountinfo`, reduced to what the watcher needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Mount {
    /// Where it is mounted, as this process sees it (escapes decoded, bytes kept as they are).
    pub mount_point: PathBuf,
    /// The file system type, e.g. `ext4`, `nfs4`, `cifs`, `fuse.sshfs`, `fuseblk`.
    pub fs_type: String,
    /// What is mounted, e.g. `/dev/sda1`, `nas:/volume1/photo`, `//nas/photos`; file systems
    /// without a source show `none` or their own name.
    pub source: String,
}

/// Parses the text of `/proc/<pid>/mountinfo`, in order.
///
/// Each line is `ID PARENT MAJ:MIN ROOT MOUNT_POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE
/// SUPER_OPTIONS` (see proc(5)); there may be any number of optional fields (`shared:N`,
/// `master:N`, `propagate_from:N`, `unbindable`) before the ` - ` separator. The kernel writes
/// space, tab, newline and backslash in paths as `\040`, `\011`, `\012` and `\134`; these
/// are decoded. Malformed lines are skipped.
pub fn parse_mountinfo(text: &str) -> Vec<Mount> {
    parse_mountinfo_bytes(text.as_bytes())
}

/// [`parse_mountinfo`] on raw bytes: mount points that are not UTF-8 (the kernel does not
/// escape them) are kept byte for byte.
pub fn parse_mountinfo_bytes(bytes: &[u8]) -> Vec<Mount> {
    bytes
        .split(|&b| b == b'\n')
        .filter_map(parse_line)
        .collect()
}

/// Reads and parses [`MOUNTINFO`].
pub fn read_mountinfo() -> io::Result<Vec<Mount>> {
    let bytes = std::fs::read(MOUNTINFO)?;
    Ok(parse_mountinfo_bytes(&bytes))
}

/// The mount `path` is on: the one with the longest mount point that is a prefix of `path`
/// component by component (`/srv/photo` is not under `/srv/ph`). When several mounts share
/// that mount point, the last one listed wins: it was mounted over the others and shadows
/// them.
///
/// `path` should be absolute and canonical (symbolic links resolved, no `..`): this compares
/// paths, it does not look at the disk. A relative path matches nothing. Limitation: a mount
/// hidden because one of its ancestors was mounted over later still matches; telling would
/// need the parent IDs, which the watcher does not need for its roots.
pub fn mount_of<'a>(mounts: &'a [Mount], path: &Path) -> Option<&'a Mount> {
    let mut best: Option<(usize, &Mount)> = None;
    for mount in mounts {
        if !path.starts_with(&mount.mount_point) {
            continue;
        }
        let depth = mount.mount_point.components().count();
        // `>=`: on equal depth the later line wins.
        if best.is_none_or(|(d, _)| depth >= d) {
            best = Some((depth, mount));
        }
    }
    best.map(|(_, m)| m)
}

/// Whether inotify can miss changes on a file system of this type, so the watcher must poll.
///
/// The rule:
/// - Network and cluster file systems: true. Other clients (and the server) change files
///   without this kernel knowing: `nfs`, `nfs4`, `cifs`, `smb3`, `smbfs`, `ncpfs`, `afs`,
///   `coda`, `ceph`, `glusterfs`, `lustre`, `gpfs`, `beegfs`, `orangefs`, `ocfs2`, `gfs2`,
///   `9p`, `virtiofs` and the VM shared folders `vboxsf`, `vmhgfs`, `prl_fs`, WSL's `drvfs`,
///   and `davfs`/`sshfs` however they are named.
/// - Every FUSE file system, plain `fuse` and any `fuse.SUBTYPE` (`fuse.sshfs`, `fuse.rclone`,
///   `fuse.s3fs`, `fuse.gvfsd-fuse`, `fuse.mergerfs`, ...): true. Its contents come from a
///   user-space daemon, which may change them (from a remote, or from the branches below a
///   union) without any event; only changes made through the mount on this machine are
///   reported. Polling a local FUSE mount costs a periodic walk; missing photos costs more.
/// - `fuseblk` (ntfs-3g, exfat-fuse: FUSE over a local block device that only this machine
///   writes): false, inotify sees every change.
/// - Everything else (`ext4`, `xfs`, `btrfs`, `zfs`, `overlay`, `tmpfs`, ...): false.
///
/// Case is ignored.
pub fn is_network_fs(fs_type: &str) -> bool {
    let t = fs_type.trim().to_ascii_lowercase();
    if t == "fuseblk" || t.starts_with("fuseblk.") {
        return false;
    }
    if t == "fuse" || t.starts_with("fuse.") {
        return true;
    }
    matches!(
        t.as_str(),
        "nfs"
            | "nfs4"
            | "cifs"
            | "smb3"
            | "smbfs"
            | "smb2"
            | "ncpfs"
            | "ncp"
            | "afs"
            | "coda"
            | "ceph"
            | "glusterfs"
            | "lustre"
            | "gpfs"
            | "beegfs"
            | "orangefs"
            | "pvfs2"
            | "ocfs2"
            | "gfs2"
            | "9p"
            | "virtiofs"
            | "vboxsf"
            | "vmhgfs"
            | "prl_fs"
            | "drvfs"
            | "davfs"
            | "sshfs"
    )
}

/// Whether `path` is on a file system where inotify can miss changes ([`is_network_fs`]).
///
/// Symbolic links are resolved first. A path that does not exist (an offline share's mount
/// point, a root not created yet) is judged by its nearest existing ancestor; a path on no
/// listed mount is not a network path. Errors: `/proc/self/mountinfo` cannot be read.
pub fn is_network_path(path: &Path) -> io::Result<bool> {
    let mounts = read_mountinfo()?;
    let resolved = resolve(path)?;
    Ok(mount_of(&mounts, &resolved).is_some_and(|m| is_network_fs(&m.fs_type)))
}

/// `path` made absolute with symbolic links resolved, through its nearest existing ancestor
/// when it does not exist (the missing rest is appended as it is).
fn resolve(path: &Path) -> io::Result<PathBuf> {
    let path = std::path::absolute(path)?;
    let mut rest = Vec::new();
    let mut cur = path.as_path();
    loop {
        match std::fs::canonicalize(cur) {
            Ok(mut found) => {
                found.extend(rest.iter().rev());
                return Ok(found);
            }
            Err(_) => match (cur.parent(), cur.file_name()) {
                (Some(parent), Some(name)) => {
                    rest.push(name.to_owned());
                    cur = parent;
                }
                // The root itself cannot be resolved (no such thing on Linux): compare as given.
                _ => return Ok(path),
            },
        }
    }
}

/// One mountinfo line, or `None` when it is malformed.
fn parse_line(line: &[u8]) -> Option<Mount> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let fields: Vec<&[u8]> = line
        .split(|b| b.is_ascii_whitespace())
        .filter(|f| !f.is_empty())
        .collect();
    // ID PARENT MAJ:MIN ROOT MOUNT_POINT OPTIONS, then optional fields up to "-".
    if fields.len() < 9 {
        return None;
    }
    let number = |f: &[u8]| std::str::from_utf8(f).ok()?.parse::<u64>().ok();
    number(fields[0])?;
    number(fields[1])?;
    if !fields[2].contains(&b':') {
        return None;
    }
    let sep = 6 + fields[6..].iter().position(|f| *f == b"-")?;
    let fs_type = fields.get(sep + 1)?;
    let source = fields.get(sep + 2)?;
    let mount_point = unescape(fields[4]);
    if mount_point.first() != Some(&b'/') {
        return None;
    }
    Some(Mount {
        mount_point: PathBuf::from(OsString::from_vec(mount_point)),
        fs_type: String::from_utf8_lossy(&unescape(fs_type)).into_owned(),
        source: String::from_utf8_lossy(&unescape(source)).into_owned(),
    })
}

/// Decodes the kernel's `\ooo` octal escapes (three octal digits, at most `\377`); any other
/// backslash is kept as it is.
fn unescape(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        if field[i] == b'\\' {
            if let Some(digits) = field.get(i + 1..i + 4) {
                if digits.iter().all(|d| (b'0'..=b'7').contains(d)) {
                    let value = digits
                        .iter()
                        .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                    if let Ok(byte) = u8::try_from(value) {
                        out.push(byte);
                        i += 4;
                        continue;
                    }
                }
            }
        }
        out.push(field[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStrExt;

    /// A NAS-ish host: root on ext4, photos on NFS, an SMB share with spaces, sshfs, an NTFS
    /// USB disk through ntfs-3g, a bind mount, nested mounts and one overmounted point.
    const HOST: &str = "\
22 28 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:13 - proc proc rw
23 28 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:2 - sysfs sysfs rw
28 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro
29 28 8:2 / /srv rw,relatime shared:20 - xfs /dev/sda2 rw,attr2,inode64,noquota
45 29 0:40 / /srv/photos rw,relatime shared:30 - nfs4 192.168.1.10:/volume1/photo rw,vers=4.1,rsize=131072,wsize=131072,hard,proto=tcp,sec=sys,clientaddr=192.168.1.20
46 45 0:45 / /srv/photos/.cache rw,nosuid,nodev,relatime shared:31 - tmpfs tmpfs rw,size=65536k
47 28 0:41 / /mnt/My\\040Photos\\011Tab rw,relatime shared:32 - cifs //nas/My\\040Photos rw,vers=3.1.1,cache=strict,username=u,uid=0,noforceuid
48 28 0:42 / /home/u/remote rw,nosuid,nodev,relatime shared:33 master:7 propagate_from:2 - fuse.sshfs u@host:/photos rw,user_id=1000,group_id=1000
49 28 8:17 / /media/usb rw,nosuid,nodev,relatime shared:34 - fuseblk /dev/sdb1 rw,user_id=0,group_id=0,default_permissions,allow_other,blksize=4096
50 28 8:2 /photos/2024 /var/lib/photos-bind ro,relatime shared:20 - xfs /dev/sda2 rw,attr2,inode64,noquota
51 28 0:43 / /mnt/union rw,relatime - fuse.mergerfs disks rw,user_id=0,group_id=0
52 28 0:44 / /mnt/back\\134slash rw unbindable - ext4 /dev/sdc1 rw
53 28 0:46 / /mnt/share rw,relatime - cifs //old/share rw,vers=3.0
54 53 0:47 / /mnt/share rw,relatime - nfs new:/share rw,vers=3
";

    /// Inside a container: root on overlay, the library bind-mounted from an NFS mount.
    const CONTAINER: &str = "\
600 550 0:52 / / rw,relatime master:300 - overlay overlay rw,lowerdir=/var/lib/docker/overlay2/l/ABC:/var/lib/docker/overlay2/l/DEF,upperdir=/var/lib/docker/overlay2/x/diff,workdir=/var/lib/docker/overlay2/x/work
601 600 0:56 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
602 600 0:40 /volume1/photo /photos ro,relatime master:30 - nfs 10.0.0.2:/volume1 rw,vers=3,hard,proto=tcp
603 600 254:1 /var/lib/phototag /data rw,relatime - ext4 /dev/vda1 rw
";

    fn m(point: &str, fs_type: &str, source: &str) -> Mount {
        Mount {
            mount_point: PathBuf::from(point),
            fs_type: fs_type.to_string(),
            source: source.to_string(),
        }
    }

    fn on<'a>(mounts: &'a [Mount], path: &str) -> &'a Mount {
        mount_of(mounts, Path::new(path)).unwrap_or_else(|| panic!("no mount for {path}"))
    }

    #[test]
    fn parses_every_line_of_a_host_table() {
        let mounts = parse_mountinfo(HOST);
        assert_eq!(mounts.len(), 14);
        assert_eq!(mounts[2], m("/", "ext4", "/dev/sda1"));
        assert_eq!(
            mounts[4],
            m("/srv/photos", "nfs4", "192.168.1.10:/volume1/photo")
        );
        assert_eq!(
            mounts[7],
            m("/home/u/remote", "fuse.sshfs", "u@host:/photos")
        );
        assert_eq!(mounts[8], m("/media/usb", "fuseblk", "/dev/sdb1"));
    }

    #[test]
    fn decodes_octal_escapes() {
        let mounts = parse_mountinfo(HOST);
        assert_eq!(
            mounts[6],
            m("/mnt/My Photos\tTab", "cifs", "//nas/My Photos")
        );
        assert_eq!(mounts[11].mount_point, PathBuf::from("/mnt/back\\slash"));
        assert_eq!(unescape(b"a\\012b"), b"a\nb");
        assert_eq!(unescape(b"\\134\\040"), b"\\ ");
        // Not an escape: kept literally.
        assert_eq!(unescape(b"a\\9zz"), b"a\\9zz");
        assert_eq!(unescape(b"a\\400"), b"a\\400");
        assert_eq!(unescape(b"end\\04"), b"end\\04");
        assert_eq!(unescape(b"\\"), b"\\");
        // Escapes may make bytes that are not UTF-8; the mount point keeps them.
        let raw = parse_mountinfo("1 1 0:1 / /mnt/\\377x rw - ext4 /dev/x rw");
        assert_eq!(raw[0].mount_point.as_os_str().as_bytes(), b"/mnt/\xffx");
    }

    #[test]
    fn keeps_mount_points_that_are_not_utf8() {
        let line = b"5 1 8:1 / /mnt/caf\xe9 rw - ext4 /dev/sda1 rw\n";
        let mounts = parse_mountinfo_bytes(line);
        assert_eq!(mounts.len(), 1);
        assert_eq!(
            mounts[0].mount_point.as_os_str().as_bytes(),
            b"/mnt/caf\xe9"
        );
    }

    #[test]
    fn handles_any_number_of_optional_fields() {
        let none = parse_mountinfo("1 0 8:1 / / rw - ext4 /dev/sda1 rw");
        assert_eq!(none, vec![m("/", "ext4", "/dev/sda1")]);
        let three =
            parse_mountinfo("2 1 0:9 / /a rw shared:1 master:2 propagate_from:3 - nfs h:/a rw");
        assert_eq!(three, vec![m("/a", "nfs", "h:/a")]);
        // A mount point named "-" is not the separator.
        let dash = parse_mountinfo("3 1 0:9 / /- rw - tmpfs tmpfs rw\n4 1 0:9 / - rw - x y z");
        assert_eq!(dash, vec![m("/-", "tmpfs", "tmpfs")]);
    }

    #[test]
    fn skips_malformed_lines() {
        let text = "\
garbage
\n\
1 2 3
x 1 8:1 / /a rw - ext4 /dev/a rw
1 x 8:1 / /a rw - ext4 /dev/a rw
1 1 81 / /a rw - ext4 /dev/a rw
1 1 8:1 / /a rw shared:1 ext4 /dev/a rw
1 1 8:1 / /a rw shared:1 -
1 1 8:1 / /a rw shared:1 - ext4
1 1 8:1 / relative rw - ext4 /dev/a rw
7 1 8:1 / /ok rw - ext4 /dev/ok rw\r
";
        assert_eq!(parse_mountinfo(text), vec![m("/ok", "ext4", "/dev/ok")]);
        assert!(parse_mountinfo("").is_empty());
    }

    #[test]
    fn never_panics_on_truncated_or_mangled_input() {
        // Every prefix of a real table, and a table with bytes scrambled by a fixed LCG.
        let text = format!("{HOST}{CONTAINER}");
        for end in 0..=text.len() {
            let _ = parse_mountinfo_bytes(&text.as_bytes()[..end]);
        }
        let mut bytes = text.into_bytes();
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..2000 {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let at = (seed >> 33) as usize % bytes.len();
            bytes[at] = (seed >> 17) as u8;
            let _ = parse_mountinfo_bytes(&bytes);
        }
    }

    #[test]
    fn finds_the_longest_component_prefix() {
        let mounts = parse_mountinfo(HOST);
        assert_eq!(on(&mounts, "/").fs_type, "ext4");
        assert_eq!(on(&mounts, "/home/u/pictures").fs_type, "ext4");
        assert_eq!(on(&mounts, "/srv").fs_type, "xfs");
        assert_eq!(on(&mounts, "/srv/other").fs_type, "xfs");
        // Nested: NFS on xfs, tmpfs on NFS.
        assert_eq!(on(&mounts, "/srv/photos").fs_type, "nfs4");
        assert_eq!(on(&mounts, "/srv/photos/2024/a.jpg").fs_type, "nfs4");
        assert_eq!(on(&mounts, "/srv/photos/.cache/x").fs_type, "tmpfs");
        // Component prefix, not string prefix.
        assert_eq!(on(&mounts, "/srv/photosX").fs_type, "xfs");
        assert_eq!(on(&mounts, "/srv/photos/").fs_type, "nfs4");
        assert_eq!(on(&mounts, "/mnt/My Photos\tTab/2023").fs_type, "cifs");
        assert_eq!(on(&mounts, "/mnt/My Photos").fs_type, "ext4");
        // A bind mount reports the file system it shows.
        assert_eq!(on(&mounts, "/var/lib/photos-bind/x.jpg").fs_type, "xfs");
        assert_eq!(on(&mounts, "/media/usb/DCIM").fs_type, "fuseblk");
    }

    #[test]
    fn the_last_mount_on_a_point_wins() {
        let mounts = parse_mountinfo(HOST);
        let share = on(&mounts, "/mnt/share/a.jpg");
        assert_eq!(
            (share.fs_type.as_str(), share.source.as_str()),
            ("nfs", "new:/share")
        );
        let reversed: Vec<Mount> = mounts.iter().rev().cloned().collect();
        assert_eq!(on(&reversed, "/mnt/share").fs_type, "cifs");
    }

    #[test]
    fn relative_paths_and_empty_tables_match_nothing() {
        let mounts = parse_mountinfo(HOST);
        assert_eq!(mount_of(&mounts, Path::new("srv/photos")), None);
        assert_eq!(mount_of(&[], Path::new("/srv")), None);
    }

    #[test]
    fn container_tables() {
        let mounts = parse_mountinfo(CONTAINER);
        assert_eq!(mounts.len(), 4);
        assert_eq!(on(&mounts, "/etc").fs_type, "overlay");
        assert!(!is_network_fs(&on(&mounts, "/etc").fs_type));
        let photos = on(&mounts, "/photos/2024/x.jpg");
        assert_eq!(photos.fs_type, "nfs");
        assert!(is_network_fs(&photos.fs_type));
        assert!(!is_network_fs(&on(&mounts, "/data/catalog.db").fs_type));
    }

    #[test]
    fn classifies_file_system_types() {
        for t in [
            "nfs",
            "nfs4",
            "cifs",
            "smb3",
            "smbfs",
            "ncpfs",
            "afs",
            "ceph",
            "glusterfs",
            "9p",
            "davfs",
            "sshfs",
            "fuse.sshfs",
            "fuse.rclone",
            "fuse.s3fs",
            "fuse.gvfsd-fuse",
            "fuse.mergerfs",
            "fuse.glusterfs",
            "fuse.ceph-fuse",
            "fuse",
            "virtiofs",
            "vboxsf",
            "NFS4",
            "lustre",
            "drvfs",
        ] {
            assert!(is_network_fs(t), "{t} should be polled");
        }
        for t in [
            "ext4", "xfs", "btrfs", "zfs", "overlay", "tmpfs", "fuseblk", "vfat", "exfat", "ntfs3",
            "f2fs", "squashfs", "proc", "autofs", "", "fusefoo", "nfsd",
        ] {
            assert!(!is_network_fs(t), "{t} should be watched with inotify");
        }
    }

    #[test]
    fn reads_this_machines_mount_table() {
        let mounts = match read_mountinfo() {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                println!("SKIPPED reads_this_machines_mount_table: no {MOUNTINFO}: {e}");
                return;
            }
            Err(e) => panic!("reading {MOUNTINFO}: {e}"),
        };
        assert!(
            mounts.iter().any(|m| m.mount_point == Path::new("/")),
            "no root mount in {mounts:?}"
        );
        assert!(mount_of(&mounts, Path::new("/")).is_some());
        // Every line of the real table parses.
        let text = std::fs::read(MOUNTINFO).unwrap();
        let lines = text
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .count();
        assert_eq!(mounts.len(), lines);
        // The answer depends on the machine; that it answers does not.
        is_network_path(Path::new("/")).unwrap();
        is_network_path(&std::env::temp_dir()).unwrap();
    }

    #[test]
    fn missing_paths_are_judged_by_their_nearest_existing_ancestor() {
        let dir = std::env::temp_dir();
        let missing = dir.join("phototag-no-such-dir").join("deeper");
        let resolved = resolve(&missing).unwrap();
        assert!(resolved.ends_with("phototag-no-such-dir/deeper"));
        assert!(resolved.starts_with(std::fs::canonicalize(&dir).unwrap()));
        assert!(resolve(Path::new("relative/missing"))
            .unwrap()
            .is_absolute());
        is_network_path(&missing).unwrap();
    }
}
