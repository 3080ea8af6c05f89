//! Label values → typed values. Every function names the label in its error.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;

use super::{BasicAuth, LabelIssue, LabelIssueKind};
use crate::model::path::UriPath;

pub(super) fn invalid(label: &str, reason: &str) -> LabelIssue {
    LabelIssue {
        label: label.to_owned(),
        kind: LabelIssueKind::Invalid,
        reason: reason.to_owned(),
    }
}

/// Marathon-LB reads `true`/`t`/`yes`/`y` as true and anything else as false; here anything
/// that is neither a true word nor a false word is an error, so a typo does not pass silently.
pub(super) fn parse_bool(key: &str, v: &str) -> Result<bool, LabelIssue> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "t" | "yes" | "y" | "1" => Ok(true),
        "false" | "f" | "no" | "n" | "0" | "" => Ok(false),
        _ => Err(invalid(
            key,
            &format!("`{v}` is not a boolean (true/false, yes/no)"),
        )),
    }
}

pub(super) fn parse_number<T: FromStr>(key: &str, v: &str) -> Result<T, LabelIssue>
where
    T::Err: fmt::Display,
{
    v.parse()
        .map_err(|e| invalid(key, &format!("`{v}` is not a valid number: {e}")))
}

pub(super) fn parse_port(key: &str, v: &str) -> Result<u16, LabelIssue> {
    match v.parse::<u16>() {
        Ok(port) if port > 0 => Ok(port),
        _ => Err(invalid(
            key,
            &format!("`{v}` is not a port number (1-65535)"),
        )),
    }
}

pub(super) fn parse_uri_path(key: &str, v: &str) -> Result<UriPath, LabelIssue> {
    v.parse()
        .map_err(|e: crate::model::path::PathError| invalid(key, &e.to_string()))
}

pub(super) fn parse_networks(key: &str, v: &str) -> Result<Vec<IpNet>, LabelIssue> {
    let nets = v
        .split_ascii_whitespace()
        .map(|word| {
            word.parse::<IpNet>()
                .or_else(|_| word.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| invalid(key, &format!("`{word}` is not an IP address or CIDR")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if nets.is_empty() {
        return Err(invalid(
            key,
            "no address given (an empty list would allow nobody)",
        ));
    }
    Ok(nets)
}

/// `realm:user:hash`, where the hash is one of the crypt(3) formats HAProxy accepts.
pub(super) fn parse_auth(key: &str, v: &str) -> Result<BasicAuth, LabelIssue> {
    let mut parts = v.splitn(3, ':');
    let (Some(realm), Some(user), Some(hash)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(invalid(key, "expected `realm:user:crypt-hash`"));
    };
    if realm.is_empty() || user.is_empty() {
        return Err(invalid(
            key,
            "expected `realm:user:crypt-hash` with a realm and a user",
        ));
    }
    if !is_crypt_hash(hash) {
        // Never echo the value: it may be a plain password pasted by mistake.
        return Err(invalid(
            key,
            "the third field is not a crypt(3) hash ($1$, $5$, $6$, $2a$/$2b$/$2y$ or 13-character DES)",
        ));
    }
    Ok(BasicAuth {
        realm: realm.into(),
        user: user.into(),
        hash: hash.into(),
    })
}

fn is_crypt_hash(hash: &str) -> bool {
    let crypt_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '/');
    let modular = ["$1$", "$5$", "$6$", "$2a$", "$2b$", "$2y$"]
        .iter()
        .any(|p| hash.starts_with(p) && hash.len() > p.len() + 8);
    let des = hash.len() == 13 && hash.chars().all(crypt_char);
    (modular
        && hash
            .chars()
            .all(|c| crypt_char(c) || c == '$' || c == '=' || c == ','))
        || des
}
