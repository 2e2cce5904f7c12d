// The Kotlin side of the FFI cost benchmark: `client.get(id)` of a small
// request from a coroutine, batches after a warm-up, the median batch (as the
// Rust and Python sides measure it). Prints `kotlin_ns=…`.
package id.sambung.bench

import id.sambung.Client
import id.sambung.ClientConfig
import id.sambung.KeyProvider
import id.sambung.model.Role
import kotlinx.coroutines.runBlocking

const val BATCH = 2000
const val BATCHES = 7

class Fixed(private val key: ByteArray) : KeyProvider {
    override fun dataKey(): ByteArray = key.copyOf()
}

fun main(args: Array<String>) = runBlocking {
    val (dir, keyHex, id) = args
    val key = keyHex.chunked(2).map { it.toInt(16).toByte() }.toByteArray()
    val client = Client.open(ClientConfig(dir, Role.RESIDENT, null, emptyList(), null, false), Fixed(key))
    suspend fun batch() {
        repeat(BATCH) { client.get(id) }
    }
    batch()
    batch() // the JIT warms up longer than the others
    val perCall = (1..BATCHES).map {
        val t = System.nanoTime()
        batch()
        (System.nanoTime() - t).toDouble() / BATCH
    }.sorted()
    println("kotlin_ns=%.0f".format(perCall[BATCHES / 2]))
}
