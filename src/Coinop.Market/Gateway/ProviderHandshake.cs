using System.Buffers;
using System.Net.WebSockets;
using System.Security.Cryptography;
using Coinop.Core.Identity;
using Coinop.Core.Protocol;
using Coinop.Market.Hosting;
using Coinop.Storage.Providers;
using NSec.Cryptography;

namespace Coinop.Market.Gateway;

/// <summary>The result of a handshake: an authenticated provider, or the reason it was refused.</summary>
public readonly record struct HandshakeResult(string? ProviderId, string? Name, string? FailureReason)
{
    public static HandshakeResult Failed(string reason) => new(null, null, reason);
}

/// <summary>
/// The market side of the provider handshake: a fresh nonce per connection, an Ed25519 signature over the
/// domain-separated payload within 10 s, then enrollment (open, or by code) in the store.
/// </summary>
public sealed class ProviderHandshake(MarketIdentity identity, MarketOptions options, IProviderRegistryStore store, IProviderRevocationStore revocations,
    TimeProvider time)
{
    public static readonly TimeSpan AnswerTimeout = TimeSpan.FromSeconds(10);
    private const int MaxAuthFrame = 16 * 1024;
    private const int MaxEnrollmentCode = 256;

    public async Task<HandshakeResult> RunAsync(WebSocket socket, CancellationToken cancellationToken)
    {
        var nonce = RandomNumberGenerator.GetBytes(ProviderAuth.NonceBytes);
        var challenge = new AuthChallenge(Convert.ToBase64String(nonce), identity.MarketId, ProviderAuth.ProtocolVersion);
        await socket.SendAsync(ProtocolJson.Serialize(challenge), WebSocketMessageType.Text, true, cancellationToken);

        using var timeout = new CancellationTokenSource(AnswerTimeout, time);
        using var link = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token);
        AuthResponse? answer;
        try
        {
            answer = await ReceiveAnswerAsync(socket, link.Token);
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested)
        {
            return HandshakeResult.Failed("timeout");
        }

        if (answer is null)
        {
            return HandshakeResult.Failed("protocol");
        }

        var publicKeyBytes = TryBase64(answer.PublicKey);
        if (publicKeyBytes is not { Length: 32 }
            || !PublicKey.TryImport(SignatureAlgorithm.Ed25519, publicKeyBytes, KeyBlobFormat.RawPublicKey, out var publicKey)
            || publicKey is null)
        {
            return HandshakeResult.Failed("bad_public_key");
        }

        var signature = TryBase64(answer.Signature);
        if (signature is not { Length: 64 }
            || !SignatureAlgorithm.Ed25519.Verify(publicKey, ProviderAuth.SigningPayload(identity.MarketId, nonce), signature))
        {
            return HandshakeResult.Failed("bad_signature");
        }

        var providerId = ProviderAuth.ProviderIdFor(publicKeyBytes);
        if (await revocations.FindAsync(providerId, cancellationToken) is not null)
        {
            return HandshakeResult.Failed("revoked");
        }

        // Display only, but stored: no control characters or unpaired surrogates (PostgreSQL refuses NUL and those), and a
        // cut that never splits a surrogate pair.
        var name = ProviderText.Name(answer.Name, providerId);

        var now = time.GetUtcNow();
        var record = new ProviderRecord(providerId, publicKeyBytes, name, now, now, Online: true);
        var known = await store.FindAsync(providerId, cancellationToken);
        if (known is not null || options.Enrollment == EnrollmentMode.Open)
        {
            await store.UpsertSeenAsync(record, cancellationToken);
            return new HandshakeResult(providerId, name, null);
        }

        if (string.IsNullOrEmpty(answer.EnrollmentCode))
        {
            return HandshakeResult.Failed("enrollment_required");
        }

        if (answer.EnrollmentCode.Length > MaxEnrollmentCode || !ProviderText.IsClean(answer.EnrollmentCode))
        {
            return HandshakeResult.Failed("enrollment_code_unknown"); // no code the operator issued looks like this (and PostgreSQL refuses NUL)
        }

        return await store.EnrollWithCodeAsync(record, answer.EnrollmentCode, now, cancellationToken) switch
        {
            EnrollOutcome.Enrolled or EnrollOutcome.AlreadyKnown => new HandshakeResult(providerId, name, null),
            EnrollOutcome.CodeExpired => HandshakeResult.Failed("enrollment_code_expired"),
            EnrollOutcome.CodeUsedUp => HandshakeResult.Failed("enrollment_code_used_up"),
            _ => HandshakeResult.Failed("enrollment_code_unknown"),
        };
    }

    private static async Task<AuthResponse?> ReceiveAnswerAsync(WebSocket socket, CancellationToken cancellationToken)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(MaxAuthFrame);
        try
        {
            var length = 0;
            ValueWebSocketReceiveResult result;
            do
            {
                if (length == MaxAuthFrame)
                {
                    return null;
                }

                result = await socket.ReceiveAsync(buffer.AsMemory(length, MaxAuthFrame - length), cancellationToken);
                length += result.Count;
            }
            while (!result.EndOfMessage);

            return result.MessageType == WebSocketMessageType.Text
                ? ProtocolJson.TryDeserialize(buffer.AsSpan(0, length)) as AuthResponse
                : null;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static byte[]? TryBase64(string? text)
    {
        if (text is null || text.Length > 256)
        {
            return null;
        }

        var bytes = new byte[text.Length];
        return Convert.TryFromBase64String(text, bytes, out var written) ? bytes[..written] : null;
    }
}
