using System.Net.Security;
using System.Security.Cryptography.X509Certificates;

namespace Coinop.Market.Mint.Lightning;

/// <summary>HTTP plumbing shared by the LND and Core Lightning REST clients.</summary>
internal static class LightningHttp
{
    /// <summary>
    /// A client for a node's REST API. With <paramref name="certFile"/> the server must present exactly that certificate
    /// (nodes use self-signed ones, often without the address the mint dials in their names); without it the system's
    /// trust store decides.
    /// </summary>
    public static HttpClient Create(string baseUrl, string? certFile)
    {
        var handler = new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(5), ConnectTimeout = TimeSpan.FromSeconds(10) };
        if (certFile is not null)
        {
            var text = File.ReadAllText(certFile);
            var pinned = text.Contains("-----BEGIN CERTIFICATE-----", StringComparison.Ordinal)
                ? X509Certificate2.CreateFromPem(text)
                : X509CertificateLoader.LoadCertificateFromFile(certFile);
            handler.SslOptions = new SslClientAuthenticationOptions
            {
                RemoteCertificateValidationCallback = (_, certificate, _, _) =>
                    certificate is not null && certificate.GetRawCertData().AsSpan().SequenceEqual(pinned.RawData),
            };
        }

        return new HttpClient(handler) { BaseAddress = new Uri(baseUrl.TrimEnd('/') + "/"), Timeout = Timeout.InfiniteTimeSpan };
    }

    /// <summary>
    /// Turns an exception of a call into <see cref="LightningUnavailableException"/> when the request certainly never
    /// reached the node (no connection, or no TLS session, was made); anything else is left as it is (outcome unknown).
    /// </summary>
    public static Exception Classify(Exception ex, string node) =>
        ex is HttpRequestException { HttpRequestError: HttpRequestError.ConnectionError or HttpRequestError.SecureConnectionError or HttpRequestError.NameResolutionError }
            ? new LightningUnavailableException($"the mint's Lightning node ({node}) cannot be reached: {ex.Message}", ex)
            : ex;
}
