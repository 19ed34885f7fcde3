namespace Coinop.Provider.Link;

/// <summary>How a market session ended, which decides the reconnect delay.</summary>
internal sealed record SessionOutcome(bool Authenticated, bool Planned, string Reason);
