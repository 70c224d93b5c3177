"""Bearer tokens for the admin API: names, roles and SHA-256 hashes in a TOML file.

The file maps a token name to its role and the hex SHA-256 of the token::

    "alice" = { role = "auditor", sha256 = "9f86d0…" }
    "ci-export" = { role = "admin", sha256 = "60303a…" }

Only hashes are stored, so the file is not a secret worth stealing (invariant
5: no secrets at rest); a token is shown once, when `sealtrail serve token add`
makes it. Tokens are 256 random bits, so an unsalted hash is enough: there is
nothing to guess. The file is read again when it changes, so adding or removing
a token needs no restart.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import threading
import tomllib
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from sealtrail.errors import ConfigError, SealtrailError

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class Role(StrEnum):
    AUDITOR = "auditor"
    ADMIN = "admin"


class Permission(StrEnum):
    SEARCH = "search"
    READ = "read"
    PROOF = "proof"
    EXPORT = "export"


GRANTS: dict[Role, frozenset[Permission]] = {
    Role.AUDITOR: frozenset({Permission.SEARCH, Permission.READ, Permission.PROOF}),
    Role.ADMIN: frozenset(Permission),
}


@dataclass(frozen=True)
class Principal:
    """Who called: the token's name and role."""

    name: str
    role: Role

    def may(self, permission: Permission) -> bool:
        return permission in GRANTS[self.role]


@dataclass(frozen=True)
class Authentication:
    """What the Authorization header of a call proved: a principal, or why not."""

    principal: Principal | None
    denied: str | None = None  # "no bearer token" or "unknown token"
    failure: str | None = None  # the token store could not be read: the detail, for the server log only


def authenticate_header(store: TokenStore, header: str | None) -> Authentication:
    """``Authorization: Bearer <token>`` (the scheme in any case) checked against STORE; never raises."""
    scheme, _, token = (header or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return Authentication(None, "no bearer token")
    try:
        principal = store.authenticate(token)
    except (SealtrailError, OSError, ValueError) as e:  # a broken, unreadable or non-UTF-8 tokens file
        return Authentication(None, "token store unavailable", failure=str(e))
    return Authentication(principal) if principal is not None else Authentication(None, "unknown token")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def parse_tokens(text: str, where: str = "tokens file") -> dict[str, tuple[Role, str]]:
    """name -> (role, sha256 hex); raises ConfigError naming the bad entry."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(where, f"not valid TOML: {e}") from e
    out: dict[str, tuple[Role, str]] = {}
    for name, entry in doc.items():
        if not NAME.match(name):
            raise ConfigError(where, f"token name {name!r} must match {NAME.pattern}")
        if not isinstance(entry, dict) or set(entry) != {"role", "sha256"}:
            raise ConfigError(where, f"token {name!r} needs exactly role and sha256")
        try:
            role = Role(entry["role"])
        except ValueError as e:
            raise ConfigError(where, f"token {name!r}: role must be one of {', '.join(Role)}") from e
        digest = entry["sha256"]
        if not isinstance(digest, str) or not _HEX64.match(digest):
            raise ConfigError(where, f"token {name!r}: sha256 must be 64 lower-case hex digits")
        out[name] = (role, digest)
    return out


class TokenStore:
    """The tokens file, re-read when its modification time or size changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._entries: dict[str, tuple[Role, str]] = {}

    def _refresh(self) -> dict[str, tuple[Role, str]]:
        try:
            st = self.path.stat()
            stamp: tuple[int, int] | None = (st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            stamp = None
        with self._lock:
            if stamp != self._stamp:
                self._entries = parse_tokens(self.path.read_text(), str(self.path)) if stamp else {}
                self._stamp = stamp
            return self._entries

    def entries(self) -> dict[str, Role]:
        return {name: role for name, (role, _) in self._refresh().items()}

    def authenticate(self, token: str) -> Principal | None:
        """The principal whose hash matches, compared in constant time; None for an unknown token."""
        presented = token_hash(token)
        found: Principal | None = None
        for name, (role, digest) in self._refresh().items():
            if hmac.compare_digest(presented, digest):
                found = Principal(name, role)
        return found

    def add(self, name: str, role: Role | str) -> str:
        """Make a new random token for ``name``, append its hash to the file, return the token (shown once)."""
        if not NAME.match(name):
            raise ConfigError("NAME", f"token name must match {NAME.pattern}")
        role = Role(role)
        if name in self._refresh():
            raise ConfigError("NAME", f"a token named {name!r} exists in {self.path}; remove it first")
        token = secrets.token_urlsafe(32)
        line = f'"{name}" = {{ role = "{role.value}", sha256 = "{token_hash(token)}" }}\n'
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a") as f:
            if f.tell() == 0:
                f.write("# sealtrail serve tokens: name = { role, sha256 of the token }; tokens are never stored\n")
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
        return token

    def remove(self, name: str) -> None:
        """Drop a token by name (rewrites the file without its line)."""
        if name not in self._refresh():
            raise ConfigError("NAME", f"no token named {name!r} in {self.path}")
        keep = [line for line in self.path.read_text().splitlines(keepends=True)
                if not line.startswith(f'"{name}" =')]
        if name in parse_tokens("".join(keep), str(self.path)):  # never write a file that would not load
            raise ConfigError("NAME", f"token {name!r} is not in the one-line form; edit {self.path} by hand")
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("".join(keep))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
