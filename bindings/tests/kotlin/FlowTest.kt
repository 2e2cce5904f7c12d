// The resident flow through the generated Kotlin bindings on the JVM, against
// a real server on loopback (started by scripts/test-bindings, which passes
// its address and one-time codes in the environment).
package id.sambung.test

import com.sun.net.httpserver.HttpServer
import id.sambung.Client
import id.sambung.ClientConfig
import id.sambung.KeyProvider
import id.sambung.KeyProviderException
import id.sambung.ListQuery
import id.sambung.LogLevel
import id.sambung.LogRecord
import id.sambung.Logger
import id.sambung.RequestObserver
import id.sambung.SambungException
import id.sambung.SyncProgress
import id.sambung.SyncReport
import id.sambung.clearLogger
import id.sambung.kinds
import id.sambung.setLogger
import id.sambung.template
import id.sambung.model.AttachmentRole
import id.sambung.model.Details
import id.sambung.model.Kind
import id.sambung.model.Need
import id.sambung.model.Role
import id.sambung.model.Status
import id.sambung.model.UploadState
import java.io.File
import java.net.InetSocketAddress
import java.nio.file.Files
import java.security.SecureRandom
import java.util.concurrent.CopyOnWriteArrayList
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertTrue
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.async
import kotlinx.coroutines.runBlocking

private val env: Map<String, String> = System.getenv()

/** A key provider written in Kotlin (a stand-in for Android Keystore). */
class TestKeys(private val key: ByteArray) : KeyProvider {
    @Volatile var calls = 0
    override fun dataKey(): ByteArray {
        calls += 1
        return key.copyOf()
    }
}

class LockedKeys : KeyProvider {
    override fun dataKey(): ByteArray = throw KeyProviderException.Failed("keystore locked")
}

class Seen : RequestObserver {
    val ids = CopyOnWriteArrayList<String>()
    override fun onChange(ids: List<String>) {
        this.ids.addAll(ids)
    }
}

class Progress : SyncProgress {
    val reports = CopyOnWriteArrayList<SyncReport>()
    override fun onProgress(report: SyncReport) {
        reports.add(report)
    }
}

class Logs : Logger {
    val records = CopyOnWriteArrayList<LogRecord>()
    override fun log(record: LogRecord) {
        records.add(record)
    }
}

fun randomKey(): ByteArray = ByteArray(32).also { SecureRandom().nextBytes(it) }

fun tempDir(): String = Files.createTempDirectory("sambung-kt").toString()

fun config(dir: String, caPem: String? = null) =
    ClientConfig(
        dataDir = dir,
        role = Role.RESIDENT,
        caPem = caPem,
        pins = emptyList(),
        budgetBytes = null,
        autoSync = false,
    )

/** Runs the `sambung` binary; its standard output. */
fun sambung(args: List<String>, env: Map<String, String> = emptyMap()): String {
    val pb = ProcessBuilder(listOf(System.getenv("SAMBUNG_BIN")) + args)
    pb.environment().putAll(env)
    val p = pb.start()
    val out = p.inputStream.bufferedReader().readText()
    val err = p.errorStream.bufferedReader().readText()
    check(p.waitFor() == 0) { "sambung $args: $err" }
    return out
}

/** The officer's `sambung device` (the CLI, on the same server). */
fun officer(vararg args: String): String =
    sambung(
        listOf("device", "--home", env.getValue("SAMBUNG_OFFICER_HOME")) + args,
        mapOf("SAMBUNG_PASSPHRASE" to env.getValue("SAMBUNG_OFFICER_PASS")),
    )

fun residentFlow() = runBlocking {
    val logs = Logs()
    setLogger(logs, LogLevel.INFO)
    val home = tempDir()
    val keys = TestKeys(randomKey())
    val client = Client.open(config(home), keys)
    assertTrue(keys.calls >= 1)
    assertEquals(13, kinds().size)

    // Invalid: every problem at once, nothing stored.
    val bad = template(Kind.COMPLAINT).copy(region = "99")
    val e = assertFailsWith<SambungException.Validation> { client.createDraft(bad) }
    assertTrue(e.errors.any { it.field == "region" })
    assertTrue(e.errors.all { it.messageEn.isNotEmpty() && it.messageId.isNotEmpty() })
    assertEquals(0, client.list(ListQuery()).size)

    val seen = Seen()
    val subscription = client.observe(seen)
    val id = client.createDraft(template(Kind.COMPLAINT).copy(region = "32.73.01.1001"))
    assertTrue(id in seen.ids)
    val photo = client.attachBytes(id, byteArrayOf(1, 2, 3), "jalan.jpg", "image/jpeg", AttachmentRole.PHOTO)
    assertEquals(3uL, photo.size)
    val file = File.createTempFile("ktp", ".pdf").apply { writeBytes(ByteArray(1000) { 7 }) }
    val scan = client.attachFile(id, file.path, AttachmentRole.SUPPORTING_DOCUMENT, "application/pdf")
    assertEquals(1000uL, scan.size)
    val request = client.get(id)
    assertTrue(request.content.details is Details.Complaint)
    assertEquals(2, request.attachments.size)
    assertEquals(listOf(id), client.list(ListQuery(kind = Kind.COMPLAINT)).map { it.id })
    assertEquals(1uL, client.pendingCount())

    // A photo is prepared on the phone (JPEG without metadata); each
    // attachment shows where its upload stands.
    val png = java.io.ByteArrayOutputStream().also {
        javax.imageio.ImageIO.write(java.awt.image.BufferedImage(40, 20, java.awt.image.BufferedImage.TYPE_INT_RGB), "png", it)
    }.toByteArray()
    val shot = client.attachPhoto(id, png, "layar.png", AttachmentRole.PHOTO, null)
    assertEquals("layar.jpg" to "image/jpeg", shot.name to shot.mime)
    val uploads = client.uploads(id)
    assertEquals(3, uploads.size)
    assertTrue(uploads.all { it.state is UploadState.Queued })
    assertFailsWith<SambungException.Forbidden> {
        client.attachPhoto(id, "GIF89a".toByteArray(), "x.gif", AttachmentRole.PHOTO, null)
    }
    assertEquals(Status.SUBMITTED, client.submit(id))
    // Submitted: the resident adds nothing more unless the office asks.
    assertFailsWith<SambungException.Forbidden> {
        client.attachBytes(id, byteArrayOf(4), "late.jpg", "image/jpeg", AttachmentRole.PHOTO)
    }
    // Only what the server refused can be discarded: unsynced work stays.
    assertFailsWith<SambungException.Forbidden> { client.discardRefused(id) }
    assertEquals(3, client.uploads(id).size)

    assertFailsWith<SambungException.NotEnrolled> { client.syncNow(null) }
    val info = client.enroll(env.getValue("SAMBUNG_SERVER"), env.getValue("SAMBUNG_CODE_KT"))
    assertEquals(Role.RESIDENT, info.role)
    val progress = Progress()
    val report = client.syncNow(progress)
    assertEquals(1u, report.pushed, "$report")
    assertEquals(report.roundTrips.toInt(), progress.reports.size)
    assertEquals(0uL, client.pendingCount())

    // The officer receives it and moves it; the change arrives here.
    officer("sync")
    officer("status", id, "received")
    officer("sync")
    seen.ids.clear()
    val pulled = client.syncNow(null)
    assertTrue(id in pulled.changed)
    assertTrue(id in seen.ids)
    assertEquals(Status.RECEIVED, client.get(id).history.last().to)

    subscription.cancel()
    seen.ids.clear()
    client.addNote(id, "terima kasih", false)
    assertTrue(seen.ids.isEmpty())

    // The log saw the work, and no personal data.
    val text = logs.records.joinToString(" ") { it.message }
    assertTrue("request created" in text)
    val applicant = request.content.applicant!!
    assertFalse(applicant.nik in text)
    assertFalse(applicant.name in text)
    clearLogger()

    // Rekey to a new key from the provider; the old key no longer opens it.
    client.rekey(TestKeys(randomKey()))
    assertEquals(id, client.get(id).id)
    assertFailsWith<SambungException.WrongKey> { Client.open(config(home), keys) }
    // Wipe: refused while the note is unsynced, done when forced.
    assertFailsWith<SambungException.Forbidden> { client.wipe(false) }
    assertEquals(id, client.get(id).id)
    client.wipe(true)
    assertFalse(File(home, "sambung.db").exists())
}

/** A server that speaks only a newer protocol. */
fun newerServer(): String {
    val server = HttpServer.create(InetSocketAddress("127.0.0.1", 0), 0)
    server.createContext("/") { ex ->
        val body = """{"code":"unsupported_version","message":"update the app"}""".toByteArray()
        ex.responseHeaders.add("content-type", "application/json")
        ex.sendResponseHeaders(400, body.size.toLong())
        ex.responseBody.use { it.write(body) }
    }
    server.start()
    return "http://127.0.0.1:${server.address.port}"
}

fun errorMapping() = runBlocking {
    val keys = TestKeys(randomKey())
    val home = tempDir()
    val client = Client.open(config(home), keys)
    val id = client.createDraft(template(Kind.KTP_EL))
    assertFailsWith<SambungException.NotFound> { client.get("8b8a1d7e-3a51-4c1e-9d55-0f8f3c0e2a11") }
    assertFailsWith<SambungException.Forbidden> { client.addNote(id, "x", true) }
    assertFailsWith<SambungException.WrongKey> { Client.open(config(home), TestKeys(randomKey())) }
    assertFailsWith<SambungException.KeyUnavailable> { Client.open(config(home), LockedKeys()) }
    assertFailsWith<SambungException.KeyUnavailable> { Client.open(config(tempDir()), TestKeys(ByteArray(5))) }
    assertFailsWith<SambungException.BadConfig> { Client.open(config(tempDir(), caPem = "not pem"), keys) }
    val notADir = File.createTempFile("not", "dir").path
    assertFailsWith<SambungException.Storage> { Client.open(config(notADir), keys) }
    assertFailsWith<SambungException.NotEnrolled> { client.syncNow(null) }
    val net = assertFailsWith<SambungException.Network> { client.enroll("http://127.0.0.1:9", "AAAA-BBBB-CCCC") }
    assertTrue(net.retryable)
    assertFailsWith<SambungException.UpdateRequired> { client.enroll(newerServer(), "AAAA-BBBB-CCCC") }
    // A store from a newer app: refused, untouched.
    val newer = tempDir()
    Client.open(config(newer), keys).close()
    val py = ProcessBuilder(
        "python3", "-c",
        "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('PRAGMA user_version = 99'); c.close()",
        "$newer/sambung.db",
    ).start()
    check(py.waitFor() == 0)
    val v = assertFailsWith<SambungException.IncompatibleVersion> { Client.open(config(newer), keys) }
    assertEquals(99u, v.found)
}

fun cancelledSync() = runBlocking {
    val client = Client.open(config(tempDir()), TestKeys(randomKey()))
    client.enroll(env.getValue("SAMBUNG_SERVER"), env.getValue("SAMBUNG_CODE_KT2"))
    val id = client.createDraft(template(Kind.BIRTH))
    val sync = async { client.syncNow(null) }
    sync.cancel()
    assertFailsWith<CancellationException> { sync.await() }
    // Nothing lost; the next sync delivers it.
    assertEquals(id, client.get(id).id)
    client.syncNow(null)
    assertEquals(0uL, client.pendingCount())
}

/**
 * A service the app learns from its server, not from compiled-in code: the
 * agency published the SKTM letter (scripts/test-bindings); a new client does
 * not know it until its sync brings it, then draws its form, fills it (one
 * answer refused, then fixed), files it with its documents, and syncs it.
 */
fun servicePublishedByTheAgency() = runBlocking {
    val sktm = "surat_keterangan_tidak_mampu"
    val client = Client.open(config(tempDir()), TestKeys(randomKey()))
    client.enroll(env.getValue("SAMBUNG_SERVER"), env.getValue("SAMBUNG_CODE_KT4"))
    // Built in: the village letters; the SKTM is not.
    assertTrue(client.services("61.71.03.1004", "id").any { it.service == "surat_keterangan_domisili" })
    assertFalse(client.services(null, "id").any { it.service == sktm })
    assertFailsWith<SambungException.NotFound> { client.form(sktm, "id") }
    assertFailsWith<SambungException.NotFound> { client.searchCodes("pekerjaan", "guru", 5u) }
    val learned = client.syncNow(null)
    assertEquals(1u, learned.services)
    assertEquals(1u, learned.codeParts)
    assertTrue(client.unusableServices().isEmpty())
    // The occupations list the agency published, searched offline.
    assertEquals(89uL, client.codeLists().single { it.list == "pekerjaan" }.codes)
    assertEquals(listOf("65"), client.searchCodes("pekerjaan", "guru", 5u).map { it.code })
    assertEquals(8, client.searchCodes("pekerjaan", "tukang", 50u).size)
    assertEquals("Nurse", client.searchCodes("pekerjaan", "74", 5u).single().en)

    val view = client.form(sktm, "id")
    assertEquals("Surat Keterangan Tidak Mampu (SKTM)", view.name)
    assertTrue(view.fields.any { it.path == "members[].nik" })
    val detail = view.fields.single { it.path == "purpose_detail" }
    assertEquals(Need.SOMETIMES, detail.required)
    val docs = view.documents.filter { it.required == Need.ALWAYS }.map { it.role }
    assertEquals(listOf("ktp_copy", "kk_copy", "rt_letter"), docs)
    val answers = client.serviceTemplate(sktm)
    assertTrue(client.evaluate(sktm, answers, docs).errors.isEmpty())
    // "Other" purpose asks for its detail: refused until it is given.
    val other = answers.replace("\"purpose\":\"health\"", "\"purpose\":\"other\"")
    check(other != answers) { "the template's purpose is not health" }
    val refused = client.evaluate(sktm, other, docs)
    assertEquals(listOf("purpose_detail" to "required"), refused.errors.map { it.field to it.code })
    assertTrue(refused.errors.single().message.id.isNotEmpty())
    val e = assertFailsWith<SambungException.Validation> {
        client.createDraft(template(Kind.COMPLAINT).copy(details = client.serviceDetails(sktm, other)))
    }
    assertEquals(listOf("details.answers.purpose_detail"), e.errors.map { it.field })
    val fixed = other.replace("\"purpose\":\"other\"", "\"purpose\":\"other\",\"purpose_detail\":\"Persyaratan beasiswa\"")
    assertTrue(client.evaluate(sktm, fixed, docs).errors.isEmpty())

    val details = client.serviceDetails(sktm, fixed)
    val service = (details as Details.Service).v1
    assertEquals(sktm to 1u, service.service to service.version)
    assertEquals(64, service.hash.length)
    val id = client.createDraft(template(Kind.COMPLAINT).copy(region = "61.71.03.1004", details = details))
    client.attachBytes(id, "ktp kotlin".toByteArray(), "ktp.pdf", "application/pdf", AttachmentRole.KTP_COPY)
    client.attachBytes(id, "kk kotlin".toByteArray(), "kk.pdf", "application/pdf", AttachmentRole.KK_COPY)
    assertFailsWith<SambungException.Validation> { client.submit(id) }
    val rt = client.attachForService(id, "rt_letter", "rt kotlin".toByteArray(), "rt.pdf", "application/pdf")
    assertEquals("rt_letter", rt.purpose)
    assertEquals(Status.SUBMITTED, client.submit(id))
    val report = client.syncNow(null)
    assertEquals(1u, report.pushed, "$report")
    assertTrue(report.refused.isEmpty(), "$report")
    // Bad input: answers that are not a JSON object.
    assertFailsWith<SambungException.Forbidden> { client.evaluate(sktm, "[1]", docs) }
    assertFailsWith<SambungException.Forbidden> { client.serviceDetails(sktm, "{nik") }
}

/** The server's administration (`sambung admin …`), as the agency runs it. */
fun admin(vararg args: String): String = sambung(listOf("admin") + args)

fun revokedAndWiped() = runBlocking {
    val home = tempDir()
    val client = Client.open(config(home), TestKeys(randomKey()))
    client.enroll(env.getValue("SAMBUNG_SERVER"), env.getValue("SAMBUNG_CODE_KT3"))
    client.createDraft(template(Kind.COMPLAINT))
    val data = env.getValue("SAMBUNG_SERVER_DATA")
    val device = admin("devices", "--data", data, "--user", "kt-3").trim().split(" ").first()
    admin("revoke", "--data", data, "--device", device, "--wipe")
    val e = assertFailsWith<SambungException.Revoked> { client.syncNow(null) }
    assertTrue(e.wiped)
    assertFalse(File(home, "sambung.db").exists())
    // The client knows its store is gone.
    assertFailsWith<SambungException.Storage> { client.pendingCount() }
}

fun main() {
    val tests = listOf(
        "resident flow" to ::residentFlow,
        "error mapping" to ::errorMapping,
        "cancelled sync" to ::cancelledSync,
        "revoked and wiped" to ::revokedAndWiped,
        "service published by the agency" to ::servicePublishedByTheAgency,
    )
    var failed = 0
    for ((name, test) in tests) {
        try {
            test()
            println("test $name ... ok")
        } catch (t: Throwable) {
            failed += 1
            println("test $name ... FAILED")
            t.printStackTrace(System.out)
        }
    }
    val verdict = if (failed == 0) "ok" else "FAILED"
    println("test result: $verdict. ${tests.size - failed} passed; $failed failed; (kotlin bindings)")
    kotlin.system.exitProcess(if (failed == 0) 0 else 1)
}
