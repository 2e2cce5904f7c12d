"""The resident flow through the generated Python bindings, against a real
server on loopback (started by scripts/test-bindings, which passes its
address and one-time codes in the environment). A second consumer of the
same library as Kotlin: the surface is language-neutral."""

import asyncio
import http.server
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import unittest

import sambung
from sambung import sambung_core as model

ENV = os.environ


class Keys(sambung.KeyProvider):
    """A key provider written in Python (a test stand-in for a keystore)."""

    def __init__(self, key: bytes):
        self.key = key
        self.calls = 0

    def data_key(self):
        self.calls += 1
        return self.key


class BrokenKeys(sambung.KeyProvider):
    def data_key(self):
        raise sambung.KeyProviderError.Failed("keystore locked")


class Seen(sambung.RequestObserver):
    def __init__(self):
        self.ids = []
        self.event = threading.Event()

    def on_change(self, ids):
        self.ids.extend(ids)
        self.event.set()


class Progress(sambung.SyncProgress):
    def __init__(self):
        self.reports = []

    def on_progress(self, report):
        self.reports.append(report)


class Logs(sambung.Logger):
    def __init__(self):
        self.records = []

    def log(self, record):
        self.records.append(record)


def tiny_png(width, height):
    """A gray RGB PNG, written by hand (no imaging library here)."""
    import struct
    import zlib

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\0" + b"\x80" * (3 * width) for _ in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def config(path, **kw):
    return sambung.ClientConfig(
        data_dir=path,
        role=model.Role.RESIDENT,
        ca_pem=kw.get("ca_pem"),
        pins=kw.get("pins", []),
        budget_bytes=None,
        auto_sync=False,
    )


def newer_server():
    """A server that speaks only a newer protocol; its address."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.dumps({"code": "unsupported_version", "message": "update the app"})
            self.send_response(400)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}"


def officer(*args):
    """Runs the officer's `sambung device` (the CLI on the same server)."""
    out = subprocess.run(
        [ENV["SAMBUNG_BIN"], "device", "--home", ENV["SAMBUNG_OFFICER_HOME"], *args],
        env={**ENV, "SAMBUNG_PASSPHRASE": ENV["SAMBUNG_OFFICER_PASS"]},
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


class ServicePublishedByTheAgency(unittest.IsolatedAsyncioTestCase):
    """A service learned from the server, not compiled-in code: the agency
    published the SKTM letter (scripts/test-bindings); a new client learns
    it at its sync, draws its form, fills it, is refused, fixes it, files
    it with its documents."""

    async def test_a_published_letter_is_learned_drawn_filled_and_filed(self):
        sktm = "surat_keterangan_tidak_mampu"
        client = await sambung.Client.open(config(tempfile.mkdtemp()), Keys(os.urandom(32)))
        await client.enroll(ENV["SAMBUNG_SERVER"], ENV["SAMBUNG_CODE_PY3"])
        self.assertNotIn(sktm, [s.service for s in await client.services(None, "en")])
        with self.assertRaises(sambung.SambungError.NotFound):
            await client.form(sktm, "en")
        with self.assertRaises(sambung.SambungError.NotFound):
            await client.search_codes("pekerjaan", "tukang", 20)
        report = await client.sync_now(None)
        self.assertEqual((report.services, report.code_parts), (1, 1))
        # The occupations list the agency published, searched offline.
        held = {l.list: l for l in await client.code_lists()}
        self.assertEqual((held["pekerjaan"].version, held["pekerjaan"].codes), (1, 89))
        trades = await client.search_codes("pekerjaan", "TUKANG", 50)
        self.assertEqual(len(trades), 8)
        self.assertTrue(all(c.name.startswith("Tukang ") for c in trades))
        self.assertEqual([c.code for c in await client.search_codes("pekerjaan", "8", 20)],
                         ["8", "80", "81", "82", "83", "84", "85", "86", "87", "88", "89"])
        self.assertEqual((await client.search_codes("pekerjaan", "bidan", 5))[0].en, "Midwife")
        with self.assertRaises(sambung.SambungError.Forbidden):
            await client.search_codes("pekerjaan", "x" * 101, 5)
        offered = {s.service: s for s in await client.services("61.71.02.1001", "en")}
        self.assertEqual(offered[sktm].name, "Certificate of low income (SKTM)")

        view = await client.form(sktm, "en")
        paths = [f.path for f in view.fields]
        self.assertIn("members[].nik", paths)
        detail = next(f for f in view.fields if f.path == "purpose_detail")
        self.assertTrue(detail.conditional)
        self.assertEqual(detail.required, model.Need.SOMETIMES)
        answers = json.loads(await client.service_template(sktm))
        docs = [d.role for d in view.documents if d.required == model.Need.ALWAYS]
        ok = await client.evaluate(sktm, json.dumps(answers), docs)
        self.assertEqual(ok.errors, [])
        self.assertEqual(json.loads(ok.calculated["household_size"]), len(answers["members"]))
        answers["purpose"] = "other"
        state = await client.evaluate(sktm, json.dumps(answers), docs)
        self.assertEqual([(e.field, e.code) for e in state.errors], [("purpose_detail", "required")])
        self.assertTrue(next(f for f in state.fields if f.field == "purpose_detail").visible)
        answers["purpose_detail"] = "Persyaratan beasiswa kuliah"
        self.assertEqual((await client.evaluate(sktm, json.dumps(answers), docs)).errors, [])

        content = sambung.template(model.Kind.COMPLAINT)
        content.region = "61.71.03.1004"
        content.details = await client.service_details(sktm, json.dumps(answers))
        self.assertEqual(content.details[0].service, sktm)
        rid = await client.create_draft(content)
        for role, data in [(model.AttachmentRole.KTP_COPY, b"ktp python"), (model.AttachmentRole.KK_COPY, b"kk python")]:
            await client.attach_bytes(rid, data, "scan.pdf", "application/pdf", role)
        with self.assertRaises(sambung.SambungError.Validation) as caught:
            await client.submit(rid)
        self.assertEqual([e.field for e in caught.exception.errors], ["attachments.rt_letter"])
        await client.attach_for_service(rid, "rt_letter", b"rt python", "rt.pdf", "application/pdf")
        self.assertEqual(await client.submit(rid), model.Status.SUBMITTED)
        report = await client.sync_now(None)
        self.assertEqual((report.pushed, report.refused), (1, []), report)
        with self.assertRaises(sambung.SambungError.NotFound):
            await client.form("izin_terbang", "en")
        with self.assertRaises(sambung.SambungError.Forbidden):
            await client.evaluate(sktm, "{nik", [])


class ResidentFlow(unittest.IsolatedAsyncioTestCase):
    def tearDown(self):
        sambung.clear_logger()

    async def test_resident_flow(self):
        logs = Logs()
        sambung.set_logger(logs, sambung.LogLevel.INFO)
        home = tempfile.mkdtemp()
        keys = Keys(os.urandom(32))
        client = await sambung.Client.open(config(home), keys)
        self.assertGreaterEqual(keys.calls, 1)

        # A draft that breaks rules: every problem at once, nothing stored.
        content = sambung.template(model.Kind.COMPLAINT)
        bad = content
        bad.region = "99"
        with self.assertRaises(sambung.SambungError.Validation) as caught:
            await client.create_draft(bad)
        fields = [e.field for e in caught.exception.errors]
        self.assertIn("region", fields)
        self.assertTrue(all(e.message_en and e.message_id for e in caught.exception.errors))
        self.assertEqual(await client.list(sambung.ListQuery()), [])

        content = sambung.template(model.Kind.COMPLAINT)
        content.region = "32.73.01.1001"
        seen = Seen()
        subscription = client.observe(seen)
        rid = await client.create_draft(content)
        self.assertIn(rid, seen.ids)
        photo = await client.attach_bytes(
            rid, b"\xff\xd8 a photo", "jalan.jpg", "image/jpeg", model.AttachmentRole.PHOTO
        )
        self.assertEqual(photo.size, 10)
        request = await client.get(rid)
        self.assertEqual(request.content.region, "32.73.01.1001")
        self.assertEqual(len(request.attachments), 1)
        self.assertTrue(isinstance(request.content.details, model.Details.COMPLAINT))
        listed = await client.list(sambung.ListQuery(kind=model.Kind.COMPLAINT))
        self.assertEqual([s.id for s in listed], [rid])
        self.assertEqual(await client.pending_count(), 1)

        # A photo is prepared on the phone: upright, small, JPEG without
        # metadata; each attachment shows where its upload stands.
        shot = await client.attach_photo(rid, tiny_png(40, 20), "layar.png", model.AttachmentRole.PHOTO, None)
        self.assertEqual((shot.name, shot.mime), ("layar.jpg", "image/jpeg"))
        uploads = await client.uploads(rid)
        self.assertEqual([u.name for u in uploads], ["jalan.jpg", "layar.jpg"])
        self.assertTrue(all(isinstance(u.state, model.UploadState.QUEUED) for u in uploads))
        with self.assertRaises(sambung.SambungError.Forbidden):
            await client.attach_photo(rid, b"GIF89a", "x.gif", model.AttachmentRole.PHOTO, None)
        self.assertEqual(await client.submit(rid), model.Status.SUBMITTED)
        # Submitted: the resident adds nothing more unless the office asks.
        with self.assertRaises(sambung.SambungError.Forbidden):
            await client.attach_bytes(rid, b"late", "late.jpg", "image/jpeg", model.AttachmentRole.PHOTO)
        # Only what the server refused can be discarded: unsynced work stays.
        with self.assertRaises(sambung.SambungError.Forbidden):
            await client.discard_refused(rid)
        # Held on the phone: read back without the network.
        self.assertEqual(await client.fetch_attachment(rid, photo.sha256), b"\xff\xd8 a photo")

        # Not enrolled yet; then enrolled with a one-time code.
        with self.assertRaises(sambung.SambungError.NotEnrolled):
            await client.sync_now(None)
        info = await client.enroll(ENV["SAMBUNG_SERVER"], ENV["SAMBUNG_CODE_PY"])
        self.assertEqual(info.role, model.Role.RESIDENT)
        progress = Progress()
        report = await client.sync_now(progress)
        self.assertEqual(report.pushed, 1, report)
        self.assertEqual(report.round_trips, len(progress.reports))
        self.assertEqual(await client.pending_count(), 0)

        # The officer receives it and moves it; the change arrives here and
        # the observer hears of it.
        officer("sync")
        officer("status", rid, "received")
        officer("sync")
        seen.ids.clear()
        report = await client.sync_now(None)
        self.assertIn(rid, report.changed)
        self.assertIn(rid, seen.ids)
        self.assertEqual((await client.get(rid)).history[-1].to, model.Status.RECEIVED)

        # Dropped, the subscription hears nothing more.
        subscription.cancel()
        seen.ids.clear()
        await client.add_note(rid, "terima kasih", False)
        self.assertEqual(seen.ids, [])

        # Error mapping.
        with self.assertRaises(sambung.SambungError.NotFound):
            await client.get("8b8a1d7e-3a51-4c1e-9d55-0f8f3c0e2a11")
        with self.assertRaises(sambung.SambungError.NotFound):
            await client.get("not an id")
        missing = os.path.join(tempfile.mkdtemp(), "KTP-Siti-Aminah.jpg")
        with self.assertRaises(sambung.SambungError.Storage) as caught:
            await client.attach_file(rid, missing, model.AttachmentRole.PHOTO, "image/jpeg")
        self.assertNotIn("Siti", str(caught.exception))  # a file name can be personal
        with self.assertRaises(sambung.SambungError.Forbidden):
            await client.add_note(rid, "x", True)  # not in needs_info
        with self.assertRaises(sambung.SambungError.WrongKey):
            await sambung.Client.open(config(home), Keys(os.urandom(32)))
        with self.assertRaises(sambung.SambungError.KeyUnavailable):
            await sambung.Client.open(config(home), BrokenKeys())
        with self.assertRaises(sambung.SambungError.BadConfig):
            await sambung.Client.open(config(tempfile.mkdtemp(), ca_pem="not pem"), keys)
        with self.assertRaises(sambung.SambungError.KeyUnavailable):
            await sambung.Client.open(config(tempfile.mkdtemp()), Keys(b"short"))
        # A store from a newer app: refused, untouched.
        newer = tempfile.mkdtemp()
        c2 = await sambung.Client.open(config(newer), keys)
        del c2
        db = sqlite3.connect(os.path.join(newer, "sambung.db"))
        db.execute("PRAGMA user_version = 99")
        db.close()
        with self.assertRaises(sambung.SambungError.IncompatibleVersion) as caught:
            await sambung.Client.open(config(newer), keys)
        self.assertEqual(caught.exception.found, 99)
        # A data folder that is a file: storage.
        not_a_dir = tempfile.mkstemp()[1]
        with self.assertRaises(sambung.SambungError.Storage):
            await sambung.Client.open(config(not_a_dir), keys)
        # Nobody listening: a retryable network error.
        fresh = await sambung.Client.open(config(tempfile.mkdtemp()), keys)
        with self.assertRaises(sambung.SambungError.Network) as caught:
            await fresh.enroll("http://127.0.0.1:9", "AAAA-BBBB-CCCC")
        self.assertTrue(caught.exception.retryable)
        # A server address that is not https (and not loopback): the app's
        # configuration, not the user's doing.
        with self.assertRaises(sambung.SambungError.BadConfig):
            await fresh.enroll("http://layanan.example.go.id", "AAAA-BBBB-CCCC")
        # A server of a newer protocol: the app must be updated.
        with self.assertRaises(sambung.SambungError.UpdateRequired):
            await fresh.enroll(newer_server(), "AAAA-BBBB-CCCC")

        # The log saw the sync, and no personal data.
        messages = " ".join(r.message for r in logs.records)
        self.assertIn("request created", messages)
        self.assertNotIn(request.content.applicant.nik, messages)
        self.assertNotIn(request.content.applicant.name, messages)

        # Rekey, then wipe (refused while unsynced, done when forced).
        new_keys = Keys(os.urandom(32))
        await client.rekey(new_keys)
        self.assertEqual((await client.get(rid)).id, rid)
        with self.assertRaises(sambung.SambungError.WrongKey):
            await sambung.Client.open(config(home), keys)
        with self.assertRaises(sambung.SambungError.Forbidden):
            await client.wipe(False)  # the note is not synced
        self.assertEqual((await client.get(rid)).id, rid)
        await client.wipe(True)
        self.assertFalse(os.path.exists(os.path.join(home, "sambung.db")))

    async def test_a_cancelled_sync_loses_nothing(self):
        home = tempfile.mkdtemp()
        client = await sambung.Client.open(config(home), Keys(os.urandom(32)))
        await client.enroll(ENV["SAMBUNG_SERVER"], ENV["SAMBUNG_CODE_PY2"])
        content = sambung.template(model.Kind.KTP_EL)
        rid = await client.create_draft(content)
        task = asyncio.ensure_future(client.sync_now(None))
        task.cancel()
        with self.assertRaises(asyncio.CancelledError):
            await task
        self.assertEqual((await client.get(rid)).id, rid)
        report = await client.sync_now(None)
        self.assertEqual(await client.pending_count(), 0)
        self.assertLessEqual(report.pushed, 1)


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    failed = len(result.failures) + len(result.errors)
    passed = result.testsRun - failed
    verdict = "ok" if not failed else "FAILED"
    print(f"test result: {verdict}. {passed} passed; {failed} failed; (python bindings)")
    sys.stdout.flush()
    # Exit without interpreter finalization: a cancelled call's Rust task
    # may still wake its (dropped) Python future from a library thread,
    # and CPython kills such threads during finalization by unwinding them,
    # which aborts the process ("exception not rethrown") after every test
    # passed. Known gap of the Python layer (closing note of issue 4).
    os._exit(1 if failed else 0)
