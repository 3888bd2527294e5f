"""The persistent on-disk cache of compiled TVM modules.

An entry is a shared library exported by ``tvm.compile`` (``<key>.so``) plus a small
JSON record of what it is (``<key>.json``). The key hashes everything that decides
the compiled code: the graph's structure (``ember.ir.hashing.structural_hash``:
ops, types, attributes, constants by content), the target, the build options,
and the versions of ember, TVM and ember's lowering sources (so editing a lowering
never serves a stale kernel). A second process that compiles the same graph loads
the library in milliseconds instead of compiling for seconds.

Location: ``$EMBER_CACHE_DIR/tvm`` or ``~/.cache/ember/tvm``; ``EMBER_TVM_CACHE=0``
(or the backend option ``cache=False``) turns it off. Writes are atomic (a
temporary file renamed into place), so concurrent processes never see half a file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any, Iterator, Optional

import tvm

from ember.ir.graph import Graph

_SOURCE_DIGEST: Optional[str] = None


def cache_root() -> Path:
    """ember's cache directory (all backends)."""
    env = os.environ.get("EMBER_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "ember"


def cache_dir() -> Path:
    return cache_root() / "tvm"


def enabled(options: dict) -> bool:
    if os.environ.get("EMBER_TVM_CACHE", "1").lower() in ("0", "false", "no", "off"):
        return False
    return bool(options.get("cache", True))


def _source_digest() -> str:
    """Digest of ember's TVM lowering sources: a code change invalidates every entry."""
    global _SOURCE_DIGEST
    if _SOURCE_DIGEST is None:
        h = hashlib.sha256()
        here = Path(__file__).parent
        for p in sorted(here.rglob("*.py")):
            h.update(p.relative_to(here).as_posix().encode())
            h.update(p.read_bytes())
        _SOURCE_DIGEST = h.hexdigest()[:16]
    return _SOURCE_DIGEST


def graph_digest(graph: Graph) -> str:
    try:
        from ember.ir.hashing import structural_hash
        return structural_hash(graph)
    except ImportError:  # pragma: no cover - older trees: the printed graph hashes constants by content
        return hashlib.sha256(str(graph).encode()).hexdigest()


def cache_key(graph: Graph, target: tvm.target.Target, options: dict) -> tuple[str, dict]:
    """(key, description) of a build."""
    import ember
    desc = {
        "graph": graph_digest(graph),
        "target": str(target),
        "options": {k: options[k] for k in sorted(options) if k in BUILD_OPTIONS},
        "ember": getattr(ember, "__version__", "?"),
        "tvm": tvm.__version__,
        "lowering": _source_digest(),
    }
    key = hashlib.sha256(json.dumps(desc, sort_keys=True, default=str).encode()).hexdigest()[:32]
    return key, desc


# options that change the compiled code (others, such as "cache", do not)
BUILD_OPTIONS = ("matmul", "schedule", "parallel", "passes", "pipeline", "threads", "inplace_writes")


@contextlib.contextmanager
def build_lock(key: str) -> Iterator[None]:
    """Hold an exclusive lock on ``key`` while building: a second process compiling the same graph
    (pytest-xdist workers, two training scripts) waits and then loads the first one's library."""
    d = cache_dir()
    try:
        d.mkdir(parents=True, exist_ok=True)
        fh = open(d / f".{key}.lock", "w")
    except OSError:
        yield
        return
    try:
        try:
            import fcntl
            fcntl.flock(fh, fcntl.LOCK_EX)
        except (ImportError, OSError):
            pass
        yield
    finally:
        fh.close()  # closing releases the lock


def load(key: str, device) -> Optional[Any]:
    """The cached library for ``key`` as a runtime module, or None."""
    path = cache_dir() / f"{key}.so"
    if not path.exists():
        return None
    try:
        mod = tvm.runtime.load_module(str(path))
    except Exception:  # noqa: BLE001 - a corrupt or foreign entry is rebuilt, never fatal
        return None
    try:
        os.utime(path)  # last use, for `ember cache info`
    except OSError:
        pass
    return mod


def store(key: str, executable, desc: dict, name: str, compile_s: float) -> Optional[Path]:
    """Export ``executable`` under ``key`` (atomically); returns its path, None when it cannot be written."""
    d = cache_dir()
    try:
        d.mkdir(parents=True, exist_ok=True)
        tmp = d / f".{key}.{os.getpid()}.tmp.so"
        executable.export_library(str(tmp))
        os.replace(tmp, d / f"{key}.so")
        record = dict(desc, name=name, compile_seconds=round(compile_s, 3), created=time.time())
        tmp_json = d / f".{key}.{os.getpid()}.tmp.json"
        tmp_json.write_text(json.dumps(record, indent=1, default=str))
        os.replace(tmp_json, d / f"{key}.json")
        return d / f"{key}.so"
    except OSError:
        return None


def entries() -> list[dict]:
    """Every cache entry: key, graph name, target, size, when created and last used."""
    d = cache_dir()
    out = []
    if not d.is_dir():
        return out
    for so in sorted(d.glob("*.so")):
        if so.name.startswith("."):
            continue
        key = so.stem
        rec: dict = {}
        meta = d / f"{key}.json"
        if meta.exists():
            try:
                rec = json.loads(meta.read_text())
            except (OSError, ValueError):
                rec = {}
        st = so.stat()
        out.append({"key": key, "name": rec.get("name", "?"), "target": rec.get("target", "?"),
                    "bytes": st.st_size + (meta.stat().st_size if meta.exists() else 0),
                    "created": rec.get("created", st.st_mtime), "last_used": st.st_mtime,
                    "compile_seconds": rec.get("compile_seconds"), "tvm": rec.get("tvm"),
                    "ember": rec.get("ember")})
    return out


def info() -> dict:
    """A summary of the cache for ``ember cache info``."""
    es = entries()
    return {"dir": str(cache_dir()), "entries": len(es), "bytes": sum(e["bytes"] for e in es), "items": es,
            "enabled": enabled({}), "tvm": tvm.__version__}


def clear() -> int:
    """Delete every entry; returns how many were removed."""
    d = cache_dir()
    if not d.is_dir():
        return 0
    n = 0
    for p in d.iterdir():
        if p.suffix in (".so", ".json", ".lock"):
            if p.suffix == ".so" and not p.name.startswith("."):
                n += 1
            try:
                p.unlink()
            except OSError:
                pass
    return n


def format_info(data: Optional[dict] = None) -> str:
    """Human-readable ``ember cache info``."""
    data = data or info()
    lines = [f"TVM compile cache: {data['dir']}" + ("" if data["enabled"] else " (disabled by EMBER_TVM_CACHE)"),
             f"  {data['entries']} compiled module(s), {data['bytes'] / 1e6:.1f} MB; "
             f"keyed by graph hash, target, build options, ember and TVM {data['tvm']} versions"]
    def short(target: str) -> str:
        try:
            t = json.loads(target)
            return t.get("kind", "?") + (f" ({t['mcpu']})" if t.get("mcpu") else "")
        except (ValueError, AttributeError):
            return target
    for e in sorted(data["items"], key=lambda e: -e["last_used"]):
        used = time.strftime("%Y-%m-%d %H:%M", time.localtime(e["last_used"]))
        cs = f", compiled in {e['compile_seconds']:.1f}s" if e.get("compile_seconds") else ""
        lines.append(f"  {e['key'][:12]}  {e['name']:<20} {short(e['target']):<16} {e['bytes'] / 1e3:8.0f} kB  "
                     f"last used {used}{cs}")
    return "\n".join(lines)
