"""Add the licence note of each bundled OpenMP runtime to repaired emfast wheels.

Run after ``auditwheel repair`` / ``delocate-wheel`` / ``delvewheel repair``:
only then is it known which runtime the wheel carries.  For every runtime
found (libgomp, LLVM libomp, MSVC vcomp) the matching ``ci/LICENSE_*.txt`` is
written to ``<name>.dist-info/licenses/`` (with a ``License-File`` entry in
METADATA when its version has that field, 2.4+), and RECORD is rewritten.

    python ci/add_licence_notes.py [--require] WHEEL_OR_FOLDER...

``--require`` fails when a wheel bundles no OpenMP runtime (on Linux and
macOS that means it was built without OpenMP).  Only the standard library is
used, so it runs in any build environment.
"""
import argparse
import base64
import hashlib
import os
import re
import sys
import tempfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
RUNTIMES = [   # (a bundled file's name, the note describing its licence)
    (re.compile(r"(^|/)libgomp[^/]*\.so[^/]*$"), "LICENSE_libgomp.txt"),
    (re.compile(r"(^|/)libomp[^/]*\.dylib$"), "LICENSE_libomp.txt"),
    (re.compile(r"(^|/)vcomp\d*[^/]*\.dll$", re.IGNORECASE), "LICENSE_vcomp.txt"),
]


def _record_line(name, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def _with_licence_files(metadata, notes):
    """METADATA with ``License-File`` lines for ``notes`` (only for Metadata-Version 2.4+)."""
    text = metadata.decode("utf-8")
    match = re.search(r"^Metadata-Version: (\d+)\.(\d+)", text, re.MULTILINE)
    if not match or (int(match.group(1)), int(match.group(2))) < (2, 4):
        return metadata
    head, sep, body = text.partition("\n\n")   # headers, then the description
    present = set(re.findall(r"^License-File: (.+)$", head, re.MULTILINE))
    extra = "".join(f"\nLicense-File: {note}" for note in notes if note not in present)
    return (head + extra + sep + body).encode("utf-8")


def add_notes(wheel, require=False):
    """Add the notes to ``wheel`` in place; return the notes added."""
    with zipfile.ZipFile(wheel) as source:
        infos = source.infolist()
        names = [info.filename for info in infos]
        notes = [note for pattern, note in RUNTIMES if any(pattern.search(n) for n in names)]
        if not notes:
            if require:
                raise SystemExit(f"{wheel}: no bundled OpenMP runtime found (was it built "
                                 "without OpenMP, or not repaired?)")
            return []
        tops = {n.split("/")[0] for n in names}
        dist_info = sorted(t for t in tops if t.endswith(".dist-info"))
        if len(dist_info) != 1:
            raise SystemExit(f"{wheel}: expected one .dist-info folder, found {dist_info}")
        dist_info = dist_info[0]
        record_name = f"{dist_info}/RECORD"
        added = {}
        for note in notes:
            with open(os.path.join(HERE, note), "rb") as handle:
                added[f"{dist_info}/licenses/{note}"] = handle.read()
        fd, tmp = tempfile.mkstemp(suffix=".whl", dir=os.path.dirname(os.path.abspath(wheel)))
        os.close(fd)
        record = []
        try:
            with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as target:
                for info in infos:
                    if info.filename == record_name or info.filename in added:
                        continue
                    data = source.read(info)
                    if info.filename == f"{dist_info}/METADATA":
                        data = _with_licence_files(data, notes)
                    target.writestr(info, data)
                    if not info.filename.endswith("/"):
                        record.append(_record_line(info.filename, data))
                for name, data in added.items():
                    info = zipfile.ZipInfo(name, date_time=infos[0].date_time)
                    info.external_attr = 0o644 << 16
                    info.compress_type = zipfile.ZIP_DEFLATED
                    target.writestr(info, data)
                    record.append(_record_line(name, data))
                record.append(f"{record_name},,")
                target.writestr(record_name, "\n".join(record) + "\n")
            os.replace(tmp, wheel)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
    return notes


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+", help="wheels, or folders holding them")
    parser.add_argument("--require", action="store_true",
                        help="fail if a wheel bundles no OpenMP runtime")
    args = parser.parse_args(argv)
    wheels = []
    for path in args.paths:
        if os.path.isdir(path):
            wheels += sorted(os.path.join(path, n) for n in os.listdir(path) if n.endswith(".whl"))
        else:
            wheels.append(path)
    if not wheels:
        raise SystemExit(f"no wheels found in {' '.join(args.paths)}")
    for wheel in wheels:
        notes = add_notes(wheel, require=args.require)
        print(f"{os.path.basename(wheel)}: added {', '.join(notes) or 'no licence note'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
