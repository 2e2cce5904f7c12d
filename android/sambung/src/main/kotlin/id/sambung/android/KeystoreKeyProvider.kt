package id.sambung.android

import android.content.Context
import android.security.keystore.KeyGenParameterSpec
import android.security.keystore.KeyProperties
import android.util.Base64
import id.sambung.KeyProvider
import id.sambung.KeyProviderException
import java.security.KeyStore
import java.security.SecureRandom
import javax.crypto.Cipher
import javax.crypto.KeyGenerator
import javax.crypto.SecretKey
import javax.crypto.spec.GCMParameterSpec

/**
 * The store's 32-byte data key, wrapped by an AES-256-GCM key that lives in
 * Android Keystore (hardware-backed where the phone has it) and never leaves
 * it. The wrapped key sits in the app's private preferences; without the
 * Keystore key it is useless. Uninstalling the app, or the user clearing its
 * data, destroys both: the store then cannot be opened, by design.
 */
class KeystoreKeyProvider(context: Context, private val alias: String = "sambung-data-key") : KeyProvider {
    private val prefs = context.getSharedPreferences("sambung-keys", Context.MODE_PRIVATE)

    override fun dataKey(): ByteArray = try {
        synchronized(lock) {
            val wrapped = prefs.getString(alias, null)
            if (wrapped != null) unwrap(wrapped) else create()
        }
    } catch (e: KeyProviderException) {
        throw e
    } catch (e: Exception) {
        // The class name only: a keystore message may carry device details.
        throw KeyProviderException.Failed("Android Keystore: ${e.javaClass.simpleName}")
    }

    private fun wrappingKey(): SecretKey {
        val ks = KeyStore.getInstance("AndroidKeyStore").apply { load(null) }
        (ks.getKey(alias, null) as? SecretKey)?.let { return it }
        val gen = KeyGenerator.getInstance(KeyProperties.KEY_ALGORITHM_AES, "AndroidKeyStore")
        gen.init(
            KeyGenParameterSpec.Builder(alias, KeyProperties.PURPOSE_ENCRYPT or KeyProperties.PURPOSE_DECRYPT)
                .setBlockModes(KeyProperties.BLOCK_MODE_GCM)
                .setEncryptionPaddings(KeyProperties.ENCRYPTION_PADDING_NONE)
                .setKeySize(256)
                .build(),
        )
        return gen.generateKey()
    }

    private fun create(): ByteArray {
        val key = ByteArray(32).also { SecureRandom().nextBytes(it) }
        val cipher = Cipher.getInstance("AES/GCM/NoPadding")
        cipher.init(Cipher.ENCRYPT_MODE, wrappingKey())
        val sealed = cipher.iv + cipher.doFinal(key)
        // commit(), not apply(): the key must be on disk before the store
        // that it opens is created.
        check(prefs.edit().putString(alias, Base64.encodeToString(sealed, Base64.NO_WRAP)).commit())
        return key
    }

    private fun unwrap(wrapped: String): ByteArray {
        val sealed = Base64.decode(wrapped, Base64.NO_WRAP)
        val cipher = Cipher.getInstance("AES/GCM/NoPadding")
        cipher.init(Cipher.DECRYPT_MODE, wrappingKey(), GCMParameterSpec(128, sealed, 0, 12))
        return cipher.doFinal(sealed, 12, sealed.size - 12)
    }

    private companion object {
        val lock = Any()
    }
}
