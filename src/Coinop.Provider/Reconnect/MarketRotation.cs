namespace Coinop.Provider.Reconnect;

/// <summary>
/// The market nodes a provider links to, one at a time: the URLs it was given (<c>--market</c>, in order), then the nodes
/// the market named (learned at each link). When a link ends, whether its node died, drained or refused the connection,
/// the provider moves on to the next URL. Failures within one round of the list are retried after the initial delay; a
/// whole round failing escalates the backoff, so an unreachable market is not hammered. With one URL this is exactly the
/// plain backoff: every failure is a whole round.
/// </summary>
public sealed class MarketRotation
{
    /// <summary>At most this many learned URLs are kept (a market could name any number).</summary>
    public const int MaxLearned = 32;

    private readonly List<string> _configured;
    private readonly ReconnectBackoff _backoff;
    private List<string> _urls;
    private int _index;
    private int _failedThisRound;

    public MarketRotation(IEnumerable<string> configured, ReconnectBackoff backoff)
    {
        _configured = [];
        foreach (var url in configured)
        {
            if (Normalize(url) is { } u && !_configured.Contains(u, StringComparer.OrdinalIgnoreCase))
            {
                _configured.Add(u);
            }
        }

        if (_configured.Count == 0)
        {
            throw new ArgumentException("at least one market URL is needed", nameof(configured));
        }

        _backoff = backoff;
        _urls = [.. _configured];
    }

    /// <summary>The URL to dial now.</summary>
    public string Current => _urls[_index];

    /// <summary>Every URL in the order they are tried: the configured ones, then the learned ones.</summary>
    public IReadOnlyList<string> Urls => _urls;

    /// <summary>
    /// The market named its live nodes: they are tried after the configured URLs (in the order named), replacing the
    /// nodes learned before. Anything that is not an absolute http(s) URL is ignored. The current URL stays current.
    /// </summary>
    public void Learn(IEnumerable<string>? nodeUrls)
    {
        var current = Current;
        var next = new List<string>(_configured);
        var learned = 0;
        foreach (var url in nodeUrls ?? [])
        {
            if (learned >= MaxLearned)
            {
                break;
            }

            if (Normalize(url) is { } u && !next.Contains(u, StringComparer.OrdinalIgnoreCase))
            {
                next.Add(u);
                learned++;
            }
        }

        _urls = next;
        var found = _urls.FindIndex(u => string.Equals(u, current, StringComparison.OrdinalIgnoreCase));
        if (found >= 0)
        {
            _index = found;
        }
        else
        {
            // The current one was a learned node the market no longer names: it stays in the list until we move on.
            _index = Math.Min(_index, _urls.Count);
            _urls.Insert(_index, current);
        }
    }

    /// <summary>
    /// A link ended after it authenticated (its node died, drained or closed it): move on to the next node, after the
    /// initial delay. Returns the delay.
    /// </summary>
    public TimeSpan AfterSession()
    {
        _failedThisRound = 0;
        Advance();
        return _backoff.NextAfterSession();
    }

    /// <summary>
    /// Dialing or authenticating failed: move on to the next node. Within a round of the list the initial delay applies;
    /// once every URL failed in a row the backoff escalates. Returns the delay, brought forward for copies that stop in
    /// <paramref name="untilCopiesStop"/> (<see cref="ReconnectBackoff.BeforeCopiesStop"/>).
    /// </summary>
    public TimeSpan AfterFailure(TimeSpan? untilCopiesStop = null)
    {
        Advance();
        _failedThisRound++;
        if (_failedThisRound >= _urls.Count)
        {
            _failedThisRound = 0;
            return _backoff.NextAfterFailure(untilCopiesStop);
        }

        return ReconnectBackoff.BeforeCopiesStop(_backoff.InitialJittered(), untilCopiesStop);
    }

    /// <summary>
    /// The market asked for a particular node next (the one that supervises workloads): it becomes current when it is one
    /// of the URLs already known (configured or learned); anything else is ignored, so a market cannot send the provider
    /// to an address it was never given. Returns whether it moved.
    /// </summary>
    public bool MoveTo(string? url)
    {
        var found = Normalize(url) is { } u ? _urls.FindIndex(x => string.Equals(x, u, StringComparison.OrdinalIgnoreCase)) : -1;
        if (found < 0)
        {
            return false;
        }

        _index = found;
        return true;
    }

    private void Advance() => _index = (_index + 1) % _urls.Count;

    /// <summary>An absolute http(s) URL without a trailing slash, or null.</summary>
    public static string? Normalize(string? url) =>
        !string.IsNullOrWhiteSpace(url) && url.Length <= 2048 && Uri.TryCreate(url.Trim(), UriKind.Absolute, out var u)
        && (u.Scheme == Uri.UriSchemeHttp || u.Scheme == Uri.UriSchemeHttps) && string.IsNullOrEmpty(u.Query) && string.IsNullOrEmpty(u.Fragment)
            ? u.GetLeftPart(UriPartial.Path).TrimEnd('/')
            : null;
}
