//! Who holds an NFLOG group, and what the kernel dropped for a socket, read from /proc: the group's
//! row in /proc/net/netfilter/nfnetlink_log gives the netlink port of its listener, /proc/net/netlink
//! that port's socket inode (and every socket's drop count), and /proc/*/fd the process with that
//! socket open. All of it is of the reader's own network namespace, the one whose groups it binds.

use std::path::Path;

/// The netlink protocol number of netfilter (`NETLINK_NETFILTER`).
const NETLINK_NETFILTER: u32 = 12;

/// "ulogd (pid 812, netlink port 812)", as much of it as /proc tells; `None` when no listener holds
/// the group (or the table cannot be read).
pub fn describe_holder(group: u16) -> Option<String> {
    let groups = std::fs::read_to_string("/proc/net/netfilter/nfnetlink_log").ok()?;
    let port = group_port(&groups, group)?;
    let netlink = std::fs::read_to_string("/proc/net/netlink").unwrap_or_default();
    let process = netlink_inode(&netlink, port).and_then(process_with_socket);
    Some(match process {
        Some((pid, name)) => format!("{name} (pid {pid}, netlink port {port})"),
        None => format!("a process in another PID namespace or gone (netlink port {port})"),
    })
}

/// The netlink port of the listener bound to `group`, from /proc/net/netfilter/nfnetlink_log:
/// `group port queued copy_mode copy_range flush_timeout refs` per line.
pub fn group_port(table: &str, group: u16) -> Option<u32> {
    table.lines().find_map(|line| {
        let mut fields = line.split_whitespace();
        let row_group: u16 = fields.next()?.parse().ok()?;
        let port: u32 = fields.next()?.parse().ok()?;
        (row_group == group).then_some(port)
    })
}

/// The inode of the netfilter netlink socket bound to `port`, from /proc/net/netlink.
pub fn netlink_inode(table: &str, port: u32) -> Option<u64> {
    rows(table).find_map(|row| {
        (row.protocol == NETLINK_NETFILTER && row.port == port).then_some(row.inode)
    })
}

/// The messages the kernel dropped for the socket with `inode` (the `Drops` column).
pub fn netlink_drops(table: &str, inode: u64) -> Option<u64> {
    rows(table).find_map(|row| (row.inode == inode).then_some(row.drops))
}

struct NetlinkRow {
    protocol: u32,
    port: u32,
    drops: u64,
    inode: u64,
}

/// The rows of /proc/net/netlink, columns found by the header's names (their order has changed
/// between kernels before).
fn rows(table: &str) -> impl Iterator<Item = NetlinkRow> + '_ {
    let mut lines = table.lines();
    let header: Vec<&str> = lines
        .next()
        .map(|line| line.split_whitespace().collect())
        .unwrap_or_default();
    let column = |name: &str| header.iter().position(|column| *column == name);
    let columns = (
        column("Eth"),
        column("Pid"),
        column("Drops"),
        column("Inode"),
    );
    lines.filter_map(move |line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let field = |index: Option<usize>| fields.get(index?)?.parse().ok();
        Some(NetlinkRow {
            protocol: field(columns.0)? as u32,
            port: field(columns.1)? as u32,
            drops: field(columns.2)?,
            inode: field(columns.3)?,
        })
    })
}

/// The process (pid, command name) that has the socket with `inode` open, searching /proc.
fn process_with_socket(inode: u64) -> Option<(u32, String)> {
    let target = format!("socket:[{inode}]");
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(descriptors) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        let holds = descriptors.flatten().any(|descriptor| {
            std::fs::read_link(descriptor.path()).is_ok_and(|link| link == Path::new(&target))
        });
        if holds {
            let name = std::fs::read_to_string(entry.path().join("comm"))
                .map(|name| name.trim().to_string())
                .unwrap_or_else(|_| "?".to_string());
            return Some((pid, name));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As kernel 6.x writes them.
    const GROUPS: &str =
        "  100    812     0 2 65535    100  1\n    5   4021     0 2   128    100  1\n";
    const NETLINK: &str = "\
sk               Eth Pid        Groups   Rmem     Wmem     Dump  Locks    Drops    Inode
0000000074b64297 0   0          00000000 0        0        0     2        0        4
000000002fbacb21 12  812        00000000 0        0        0     2        0        31337
00000000deadbeef 12  4021       00000000 2304     0        0     2        17       40404
";

    #[test]
    fn the_group_row_gives_its_listeners_port() {
        assert_eq!(group_port(GROUPS, 100), Some(812));
        assert_eq!(group_port(GROUPS, 5), Some(4021));
        assert_eq!(group_port(GROUPS, 7), None);
        assert_eq!(group_port("", 100), None);
    }

    #[test]
    fn the_netlink_table_gives_a_ports_socket_and_a_sockets_drops() {
        assert_eq!(netlink_inode(NETLINK, 812), Some(31337));
        assert_eq!(netlink_inode(NETLINK, 0), None, "port 0 is a route socket");
        assert_eq!(netlink_drops(NETLINK, 40404), Some(17));
        assert_eq!(netlink_drops(NETLINK, 31337), Some(0));
        assert_eq!(netlink_drops(NETLINK, 1), None);
    }

    #[test]
    fn this_process_is_found_by_its_own_socket() {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let link = std::fs::read_link(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&socket)
        ))
        .unwrap();
        let inode: u64 = link
            .to_str()
            .and_then(|link| link.strip_prefix("socket:["))
            .and_then(|rest| rest.strip_suffix(']'))
            .and_then(|number| number.parse().ok())
            .unwrap();
        let (pid, _) = process_with_socket(inode).expect("found");
        assert_eq!(pid, std::process::id());
    }
}
