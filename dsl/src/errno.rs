//! Linux errno names, for fields that carry an error as the kernel passes
//! it: 0, or a negative errno (`-EPERM` is -1). The numbers are the
//! generic ones (`include/uapi/asm-generic/errno-base.h` and `errno.h`),
//! which x86-64 and arm64 use; tcpq's tests compare them with this
//! machine's `/usr/include/asm-generic/errno*.h`.

/// Every errno name with its (positive) number, in the headers' order.
pub static ERRNOS: &[(&str, i32)] = &[
    ("EPERM", 1),
    ("ENOENT", 2),
    ("ESRCH", 3),
    ("EINTR", 4),
    ("EIO", 5),
    ("ENXIO", 6),
    ("E2BIG", 7),
    ("ENOEXEC", 8),
    ("EBADF", 9),
    ("ECHILD", 10),
    ("EAGAIN", 11),
    ("ENOMEM", 12),
    ("EACCES", 13),
    ("EFAULT", 14),
    ("ENOTBLK", 15),
    ("EBUSY", 16),
    ("EEXIST", 17),
    ("EXDEV", 18),
    ("ENODEV", 19),
    ("ENOTDIR", 20),
    ("EISDIR", 21),
    ("EINVAL", 22),
    ("ENFILE", 23),
    ("EMFILE", 24),
    ("ENOTTY", 25),
    ("ETXTBSY", 26),
    ("EFBIG", 27),
    ("ENOSPC", 28),
    ("ESPIPE", 29),
    ("EROFS", 30),
    ("EMLINK", 31),
    ("EPIPE", 32),
    ("EDOM", 33),
    ("ERANGE", 34),
    ("EDEADLK", 35),
    ("ENAMETOOLONG", 36),
    ("ENOLCK", 37),
    ("ENOSYS", 38),
    ("ENOTEMPTY", 39),
    ("ELOOP", 40),
    ("ENOMSG", 42),
    ("EIDRM", 43),
    ("ECHRNG", 44),
    ("EL2NSYNC", 45),
    ("EL3HLT", 46),
    ("EL3RST", 47),
    ("ELNRNG", 48),
    ("EUNATCH", 49),
    ("ENOCSI", 50),
    ("EL2HLT", 51),
    ("EBADE", 52),
    ("EBADR", 53),
    ("EXFULL", 54),
    ("ENOANO", 55),
    ("EBADRQC", 56),
    ("EBADSLT", 57),
    ("EBFONT", 59),
    ("ENOSTR", 60),
    ("ENODATA", 61),
    ("ETIME", 62),
    ("ENOSR", 63),
    ("ENONET", 64),
    ("ENOPKG", 65),
    ("EREMOTE", 66),
    ("ENOLINK", 67),
    ("EADV", 68),
    ("ESRMNT", 69),
    ("ECOMM", 70),
    ("EPROTO", 71),
    ("EMULTIHOP", 72),
    ("EDOTDOT", 73),
    ("EBADMSG", 74),
    ("EOVERFLOW", 75),
    ("ENOTUNIQ", 76),
    ("EBADFD", 77),
    ("EREMCHG", 78),
    ("ELIBACC", 79),
    ("ELIBBAD", 80),
    ("ELIBSCN", 81),
    ("ELIBMAX", 82),
    ("ELIBEXEC", 83),
    ("EILSEQ", 84),
    ("ERESTART", 85),
    ("ESTRPIPE", 86),
    ("EUSERS", 87),
    ("ENOTSOCK", 88),
    ("EDESTADDRREQ", 89),
    ("EMSGSIZE", 90),
    ("EPROTOTYPE", 91),
    ("ENOPROTOOPT", 92),
    ("EPROTONOSUPPORT", 93),
    ("ESOCKTNOSUPPORT", 94),
    ("EOPNOTSUPP", 95),
    ("EPFNOSUPPORT", 96),
    ("EAFNOSUPPORT", 97),
    ("EADDRINUSE", 98),
    ("EADDRNOTAVAIL", 99),
    ("ENETDOWN", 100),
    ("ENETUNREACH", 101),
    ("ENETRESET", 102),
    ("ECONNABORTED", 103),
    ("ECONNRESET", 104),
    ("ENOBUFS", 105),
    ("EISCONN", 106),
    ("ENOTCONN", 107),
    ("ESHUTDOWN", 108),
    ("ETOOMANYREFS", 109),
    ("ETIMEDOUT", 110),
    ("ECONNREFUSED", 111),
    ("EHOSTDOWN", 112),
    ("EHOSTUNREACH", 113),
    ("EALREADY", 114),
    ("EINPROGRESS", 115),
    ("ESTALE", 116),
    ("EUCLEAN", 117),
    ("ENOTNAM", 118),
    ("ENAVAIL", 119),
    ("EISNAM", 120),
    ("EREMOTEIO", 121),
    ("EDQUOT", 122),
    ("ENOMEDIUM", 123),
    ("EMEDIUMTYPE", 124),
    ("ECANCELED", 125),
    ("ENOKEY", 126),
    ("EKEYEXPIRED", 127),
    ("EKEYREVOKED", 128),
    ("EKEYREJECTED", 129),
    ("EOWNERDEAD", 130),
    ("ENOTRECOVERABLE", 131),
    ("ERFKILL", 132),
    ("EHWPOISON", 133),
];

/// Second names the headers give to a number (accepted in programs,
/// never printed).
pub static ALIASES: &[(&str, i32)] = &[
    ("EWOULDBLOCK", 11), // = EAGAIN
    ("EDEADLOCK", 35),   // = EDEADLK
];

/// Not an errno: `net_xmit_eval()`'s qdisc verdict, which
/// `__tcp_transmit_skb()` passes up unchanged when a qdisc or the device
/// dropped the packet (`include/linux/netdevice.h`; `NET_XMIT_CN` reads as
/// 0 there). The one positive value such a field holds.
pub const NET_XMIT_DROP: (&str, i64) = ("NET_XMIT_DROP", 1);

/// The value a name stands for, as the kernel passes it: `EPERM` is -1,
/// `NET_XMIT_DROP` is 1.
pub fn by_name(name: &str) -> Option<i64> {
    if name == NET_XMIT_DROP.0 {
        return Some(NET_XMIT_DROP.1);
    }
    ERRNOS
        .iter()
        .chain(ALIASES)
        .find(|(n, _)| *n == name)
        .map(|(_, v)| -i64::from(*v))
}

/// The name of a value as the kernel passes it (-1 is `EPERM`); `None` for
/// 0 and for numbers without a name.
pub fn name(value: i64) -> Option<&'static str> {
    if value == NET_XMIT_DROP.1 {
        return Some(NET_XMIT_DROP.0);
    }
    ERRNOS
        .iter()
        .find(|(_, v)| -i64::from(*v) == value)
        .map(|(n, _)| *n)
}

/// Every name a program may write (for "did you mean").
pub fn names() -> impl Iterator<Item = &'static str> {
    ERRNOS
        .iter()
        .chain(ALIASES)
        .map(|(n, _)| *n)
        .chain(std::iter::once(NET_XMIT_DROP.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_values_round_trip() {
        assert_eq!(by_name("EPERM"), Some(-1));
        assert_eq!(by_name("ENOBUFS"), Some(-105));
        assert_eq!(by_name("EHOSTUNREACH"), Some(-113));
        assert_eq!(by_name("EWOULDBLOCK"), Some(-11));
        assert_eq!(by_name("NET_XMIT_DROP"), Some(1));
        assert_eq!(by_name("eperm"), None);
        assert_eq!(name(-11), Some("EAGAIN"));
        assert_eq!(name(1), Some("NET_XMIT_DROP"));
        assert_eq!(name(0), None);
        assert_eq!(name(-41), None);
        for (n, v) in ERRNOS {
            assert_eq!(
                name(-i64::from(*v)),
                Some(*n),
                "{n} is printed by its own name"
            );
        }
    }

    /// The table is this machine's asm-generic headers, where they exist.
    #[test]
    fn table_matches_the_system_headers() {
        let mut have: Vec<(String, i32)> = Vec::new();
        for f in ["errno-base.h", "errno.h"] {
            let Ok(text) = std::fs::read_to_string(format!("/usr/include/asm-generic/{f}")) else {
                eprintln!("no /usr/include/asm-generic/{f}; skipped");
                return;
            };
            for l in text.lines() {
                let mut w = l.split_whitespace();
                if w.next() != Some("#define") {
                    continue;
                }
                let (Some(n), Some(v)) = (w.next(), w.next()) else {
                    continue;
                };
                if !n.starts_with('E') {
                    continue;
                }
                let v = v
                    .parse()
                    .ok()
                    .or_else(|| have.iter().find(|(h, _)| h == v).map(|(_, x)| *x))
                    .unwrap_or_else(|| panic!("{l}"));
                have.push((n.to_string(), v));
            }
        }
        let want: Vec<(String, i32)> = ERRNOS
            .iter()
            .chain(ALIASES)
            .map(|(n, v)| (n.to_string(), *v))
            .collect();
        let mut have_sorted = have.clone();
        let mut want_sorted = want;
        have_sorted.sort();
        want_sorted.sort();
        assert_eq!(want_sorted, have_sorted);
    }
}
