package id.sambung.android

import android.content.Context
import android.net.ConnectivityManager
import android.net.Network
import android.net.NetworkCapabilities
import id.sambung.Client

/**
 * Tells the core when the network comes and goes and whether it is
 * metered: coming back online syncs at once (auto sync), and large
 * attachments wait on metered links. Call [stop] when the client closes.
 */
class NetworkWatcher(context: Context, private val client: Client) {
    private val cm = context.getSystemService(ConnectivityManager::class.java)

    private val callback = object : ConnectivityManager.NetworkCallback() {
        override fun onCapabilitiesChanged(network: Network, caps: NetworkCapabilities) {
            val online = caps.hasCapability(NetworkCapabilities.NET_CAPABILITY_VALIDATED)
            val metered = !caps.hasCapability(NetworkCapabilities.NET_CAPABILITY_NOT_METERED)
            client.networkChanged(online, metered)
        }

        override fun onLost(network: Network) {
            client.networkChanged(false, false)
        }
    }

    /** Starts listening (the current state is reported at once). */
    fun start() = cm.registerDefaultNetworkCallback(callback)

    /** Stops listening. */
    fun stop() = cm.unregisterNetworkCallback(callback)
}
