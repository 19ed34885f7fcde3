using Coinop.Core.Protocol;
using Coinop.Market.Gateway;
using CsCheck;

namespace Coinop.Market.Tests.Gateway;

/// <summary>
/// The bounds the gateway puts on what a provider says, driven with CsCheck: load figures (<see cref="LoadCheck"/>),
/// job errors (<see cref="JobErrorCheck"/>) and the text it sends (<see cref="ProviderText"/>).
/// </summary>
public class ProviderClaimsProperties
{
    private static readonly Gen<int> Ints = Gen.Frequency((1, Gen.OneOf(Gen.Const(int.MinValue), Gen.Const(int.MaxValue), Gen.Const(-1), Gen.Const(0))), (3, Gen.Int));

    private static readonly Gen<double> Doubles = Gen.Frequency(
        (1, Gen.OneOf(Gen.Const(double.NaN), Gen.Const(double.PositiveInfinity), Gen.Const(double.NegativeInfinity), Gen.Const(double.MaxValue), Gen.Const(-0.0))),
        (3, Gen.Double));

    /// <summary>Any text, with control characters, surrogates (paired or not) and NUL well represented.</summary>
    private static readonly Gen<string> Texts = Gen.Frequency(
        (2, Gen.String),
        (2, Gen.Char['\0', '\uffff'].Array[0, 200].Select(c => new string(c))),
        (1, Gen.OneOf(Gen.Const('\0'), Gen.Const('\ud83d'), Gen.Const('\ude00'), Gen.Const('a'), Gen.Const('\n'), Gen.Const(' ')).Array[0, 140].Select(c => new string(c))));

    [Fact]
    public void Bounded_load_figures_are_within_their_meaning_and_sum_over_32768_providers_without_overflow()
    {
        Gen.Select(Ints, Ints, Doubles, Doubles, Doubles, Doubles, (a, b, c, d, e, f) => new LoadFigures(a, b, c, d, e, f)).Sample(load =>
        {
            var b = LoadCheck.Bounded(load);
            Assert.InRange(b.InFlight, 0, LoadCheck.MaxJobs);
            Assert.InRange(b.QueueDepth, 0, LoadCheck.MaxJobs);
            Assert.True((long)LoadCheck.MaxJobs * 32_768 <= int.MaxValue);
            foreach (var figure in new[] { b.P50LatencyMs, b.P95LatencyMs, b.TokensPerSecond })
            {
                Assert.InRange(figure, 0, LoadCheck.MaxFigure);
            }

            Assert.InRange(b.ErrorRate, 0, 1);
            Assert.Equal(b, LoadCheck.Bounded(b)); // figures within bounds are kept as they are
        });
    }

    [Fact]
    public void A_bounded_job_error_keeps_a_short_message_as_is_cuts_a_long_one_and_keeps_known_codes()
    {
        var codes = Gen.OneOf(Gen.Const(JobErrorCodes.InvalidRequest), Gen.Const(JobErrorCodes.BackendUnreachable), Texts);
        Gen.Select(codes, Texts.SelectMany(t => Gen.Int[1, 3000].Select(n => string.Concat(Enumerable.Repeat(t, t.Length == 0 ? 1 : 1 + n / (t.Length + 1)))))).Sample((code, message) =>
        {
            var bounded = JobErrorCheck.Bounded(new JobError(Guid.NewGuid(), 1, code, message, false));
            Assert.True(bounded.Message.Length <= JobErrorCheck.MaxMessage);
            Assert.StartsWith(bounded.Message, message, StringComparison.Ordinal);
            Assert.True(message.Length > JobErrorCheck.MaxMessage || bounded.Message == message);
            Assert.True(bounded.Code == code || bounded.Code == JobErrorCodes.Internal);
            Assert.True(code is not (JobErrorCodes.InvalidRequest or JobErrorCodes.BackendUnreachable) || bounded.Code == code);
        });
    }

    [Fact]
    public void A_cleaned_name_is_clean_short_and_never_empty()
    {
        Texts.Sample(name =>
        {
            var clean = ProviderText.Name(name, "pid");
            Assert.True(ProviderText.IsClean(clean), $"not clean: {string.Join(' ', clean.Select(c => ((int)c).ToString("x4")))}");
            Assert.InRange(clean.Length, 1, ProviderText.MaxNameLength);
            Assert.Equal(clean, clean.Trim());
            Assert.True(clean == "pid" || ProviderText.IsClean(name) && name.Trim().StartsWith(clean, StringComparison.Ordinal) || !ProviderText.IsClean(name));
        });
    }

    [Fact]
    public void Cutting_and_cleaning_never_leave_half_a_surrogate_pair()
    {
        Gen.Select(Texts, Gen.Int[1, 300]).Sample((text, max) =>
        {
            var cut = Coinop.Core.Text.TextCut.Cut(text, max);
            Assert.True(cut.Length <= max && text.StartsWith(cut, StringComparison.Ordinal));
            Assert.True(!ProviderText.IsClean(text) || ProviderText.IsClean(cut));
            var cleaned = ProviderText.Clean(text);
            Assert.Equal(text.Length, cleaned.Length);
            Assert.True(ProviderText.IsClean(cleaned));
        });
    }
}
