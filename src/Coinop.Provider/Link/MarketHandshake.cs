using Coinop.Core.Identity;
using Coinop.Core.Protocol;
using Coinop.Provider.Hosting;
using Coinop.Provider.Identity;
using Coinop.Runtime.Links;

namespace Coinop.Provider.Link;

/// <summary>
/// The provider's side of the link's handshake: take the market's auth_challenge, refuse a market other than the pinned
/// one, answer with the provider key's signature, and read the verdict.
/// </summary>
internal static class MarketHandshake
{
    /// <returns>The market's auth_ok, or why the handshake failed.</returns>
    public static async Task<(AuthOk? Ok, SessionOutcome? Refused)> RunAsync(AgentContext agent, MarketSocket socket, string marketUrl, CancellationToken ct)
    {
        var first = await socket.ReceiveAsync(ct);
        if (first is { Close: true })
        {
            return (null, first.Closed(authenticated: false));
        }

        if (ProtocolJson.TryDeserialize(first.Payload.Span) is not AuthChallenge challenge)
        {
            return Refused("the market did not open with an auth_challenge");
        }

        if (challenge.ProtocolVersion != ProviderAuth.ProtocolVersion)
        {
            ProviderLog.ProtocolMismatch(agent.Logger, challenge.ProtocolVersion, ProviderAuth.ProtocolVersion);
        }

        byte[] nonce;
        try
        {
            nonce = Convert.FromBase64String(challenge.Nonce);
        }
        catch (FormatException)
        {
            return Refused("the challenge nonce is not base64");
        }

        // Refuse before signing: a signature for another market id is what an impostor would replay there.
        var pinned = agent.MarketPin.Pinned;
        if (!MarketPin.Allows(pinned, challenge.MarketId))
        {
            ProviderLog.MarketIdChanged(agent.Logger, marketUrl, challenge.MarketId, pinned!, agent.MarketPin.Path);
            return Refused($"market id {challenge.MarketId} is not the pinned market {pinned}");
        }

        var identity = agent.Identity;
        var answer = new AuthResponse(
            Convert.ToBase64String(identity.PublicKey),
            Convert.ToBase64String(identity.SignChallenge(challenge.MarketId, nonce)),
            agent.AgentVersion,
            agent.Options.Name,
            agent.Options.EnrollmentCode);
        await socket.SendAsync(OutgoingFrame.Text(ProtocolJson.Serialize(answer)), ct);

        var reply = await socket.ReceiveAsync(ct);
        if (reply is { Close: true })
        {
            return (null, reply.Closed(authenticated: false));
        }

        switch (ProtocolJson.TryDeserialize(reply.Payload.Span))
        {
            case AuthOk ok:
                agent.MarketPin.PinIfFirst(challenge.MarketId);
                ProviderLog.Authenticated(agent.Logger, marketUrl, ok.ProviderId, ok.HeartbeatTtlMs);
                return (ok, null);
            case AuthFailed failed:
                ProviderLog.AuthRefused(agent.Logger, failed.Reason);
                return Refused("authentication refused: " + failed.Reason);
            default:
                return Refused("the market answered the handshake with an unexpected frame");
        }
    }

    private static (AuthOk?, SessionOutcome?) Refused(string reason) => (null, new SessionOutcome(false, false, reason));
}
