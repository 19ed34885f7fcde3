using System.Diagnostics.Metrics;
using System.Net;
using System.Text;
using System.Text.Json;
using Coinop.Core.Protocol;
using Coinop.Market.Inference;
using Microsoft.AspNetCore.Http;
using Coinop.Market.Tests.TestProviders;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace Coinop.Market.Tests.Inference;

public class ErrorTests
{
    public static TheoryData<string, string, string?> BadRequests => new()
    {
        { "/v1/chat/completions", "not json", null },
        { "/v1/chat/completions", "[1,2,3]", null },
        { "/v1/chat/completions", """{"messages":[{"role":"user","content":"x"}]}""", null },
        { "/v1/chat/completions", """{"model":42,"messages":[{"role":"user","content":"x"}]}""", null },
        { "/v1/chat/completions", """{"model":"","messages":[{"role":"user","content":"x"}]}""", null },
        { "/v1/chat/completions", """{"model":"llama3"}""", null },
        { "/v1/chat/completions", """{"model":"llama3","messages":"hello"}""", null },
        { "/v1/chat/completions", """{"model":"llama3","messages":[]}""", null },
        { "/v1/chat/completions", """{"model":"llama3","messages":[42]}""", null },
        { "/v1/chat/completions", """{"model":"llama3","stream":"yes","messages":[{"role":"user","content":"x"}]}""", null },
        { "/v1/chat/completions", """{"model":"llama3","stream":true,"stream_options":7,"messages":[{"role":"user","content":"x"}]}""", null },
        { "/v1/chat/completions", """{"model":"llama3","max_tokens":-3,"messages":[{"role":"user","content":"x"}]}""", null },
        { "/v1/chat/completions", """{"model":"llama3","max_tokens":1.5,"messages":[{"role":"user","content":"x"}]}""", null },
        { "/v1/chat/completions", """{"model":"llama3","messages":[{"role":"user","content":"x"}]}""", "X-Coinop-Max-Price: cheap" },
        { "/v1/chat/completions", """{"model":"llama3","messages":[{"role":"user","content":"x"}]}""", "X-Coinop-Max-Price: 10:-1" },
        { "/v1/chat/completions", """{"model":"llama3","messages":[{"role":"user","content":"x"}]}""", "X-Coinop-Timeout: soon" },
        { "/v1/chat/completions", """{"model":"llama3","messages":[{"role":"user","content":"x"}]}""", "X-Coinop-Timeout: 0" },
        { "/v1/completions", """{"model":"llama3"}""", null },
        { "/v1/completions", """{"model":"llama3","prompt":{"a":1}}""", null },
        { "/v1/embeddings", """{"model":"llama3"}""", null },
        { "/v1/embeddings", """{"model":"llama3","input":12}""", null },
        { "/v1/chat/completions", "{\"model\":\"llama3\",\"messages\":[" + new string('[', 200) + "]}", null },
        { "/v1/chat/completions", "", null },
    };

    [Theory]
    [MemberData(nameof(BadRequests))]
    public async Task Malformed_or_invalid_requests_get_a_JSON_400_and_reach_no_provider(string path, string body, string? header)
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await MarketUnderTest.StartAsync(cancellationToken: ct);
        await using var provider = await market.ProviderAsync("llama3", ct, embeddings: true);
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        if (header is not null)
        {
            var (name, value) = (header[..header.IndexOf(':', StringComparison.Ordinal)], header[(header.IndexOf(':', StringComparison.Ordinal) + 2)..]);
            request.Headers.TryAddWithoutValidation(name, value);
        }

        using var response = await market.Http.SendAsync(request, ct);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        await AssertOpenAiErrorAsync(response, "invalid_request_error", ct);
        Assert.Empty(provider.Jobs);
    }

    [Fact]
    public async Task Bad_input_never_reaches_the_internal_error_handler()
    {
        var ct = TestContext.Current.CancellationToken;
        var internalErrors = 0L;
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == InferenceMetrics.MeterName && instrument.Name == "coinop.market.errors")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            foreach (var tag in tags)
            {
                if (tag.Key == "status" && tag.Value is 500)
                {
                    Interlocked.Add(ref internalErrors, value);
                }
            }
        });
        listener.Start();
        await using var market = await MarketUnderTest.StartAsync(o => o.MaxRequestBodyBytes = 4096, cancellationToken: ct);
        await using var provider = await market.ProviderAsync("llama3", ct, embeddings: true);

        var statuses = new List<int>();
        foreach (var row in BadRequests.Where(r => r.Data.Item3 is null))
        {
            foreach (var path in (string[])["/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/messages"])
            {
                using var response = await market.Http.PostAsync(path, new StringContent(row.Data.Item2, Encoding.UTF8, "application/json"), ct);
                statuses.Add((int)response.StatusCode);
            }
        }

        using var huge = await market.Http.PostAsync("/v1/messages", new StringContent(new string('x', 10_000)), ct);
        statuses.Add((int)huge.StatusCode);

        Assert.All(statuses, s => Assert.InRange(s, 400, 499));
        Assert.Equal(0, Interlocked.Read(ref internalErrors));
    }

    [Theory]
    [InlineData("GET", "/v1/chat/completions", HttpStatusCode.MethodNotAllowed)]
    [InlineData("POST", "/v1/nothing-here", HttpStatusCode.NotFound)]
    public async Task Unknown_endpoints_and_methods_get_JSON_errors(string method, string path, HttpStatusCode status)
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await MarketUnderTest.StartAsync(cancellationToken: ct);

        using var response = await market.Http.SendAsync(new HttpRequestMessage(new HttpMethod(method), path), ct);

        Assert.Equal(status, response.StatusCode);
        await AssertOpenAiErrorAsync(response, "invalid_request_error", ct);
    }

    [Fact]
    public async Task An_unknown_model_gets_404()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await MarketUnderTest.StartAsync(cancellationToken: ct);
        await using var provider = await market.ProviderAsync("llama3", ct);

        using var response = await market.Http.PostAsync("/v1/chat/completions",
            OpenAiApiTests.Json("""{"model":"gpt-17","messages":[{"role":"user","content":"x"}]}"""), ct);

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        var error = await AssertOpenAiErrorAsync(response, "invalid_request_error", ct);
        Assert.Equal("model_not_found", error.GetProperty("code").GetString());
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_body_over_the_limit_gets_a_JSON_413(bool chunked)
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await MarketUnderTest.StartAsync(o => o.MaxRequestBodyBytes = 4096, cancellationToken: ct);
        await using var provider = await market.ProviderAsync("llama3", ct);
        var body = "{\"model\":\"llama3\",\"messages\":[{\"role\":\"user\",\"content\":\"" + new string('x', 8192) + "\"}]}";
        HttpContent content = chunked
            ? new StreamContent(new MemoryStream(Encoding.UTF8.GetBytes(body)))
            : new StringContent(body, Encoding.UTF8, "application/json");
        if (chunked)
        {
            content.Headers.ContentLength = null;
        }

        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = content };
        if (chunked)
        {
            request.Headers.TransferEncodingChunked = true;
        }

        using var response = await market.Http.SendAsync(request, ct);

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        var error = await AssertOpenAiErrorAsync(response, "invalid_request_error", ct);
        Assert.Equal("request_too_large", error.GetProperty("code").GetString());
        Assert.Empty(provider.Jobs);
    }

    [Fact]
    public async Task A_passed_deadline_cancels_the_job_at_the_provider_and_answers_504()
    {
        var ct = TestContext.Current.CancellationToken;
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var market = await MarketUnderTest.StartAsync(o => o.HeartbeatMinTtl = TimeSpan.FromMinutes(10), builder: b => b.Services.AddSingleton<TimeProvider>(time), cancellationToken: ct);
        await using var provider = await market.ProviderAsync("llama3", ct, script: Scripts.Hang());
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = OpenAiApiTests.Json("""{"model":"llama3","messages":[{"role":"user","content":"x"}]}"""),
        };
        request.Headers.Add("X-Coinop-Timeout", "30");

        var pending = market.Http.SendAsync(request, ct);
        var job = await provider.WaitForAsync<JobMessage>(_ => true).WaitAsync(TimeSpan.FromSeconds(30), ct);
        Assert.Equal(time.GetUtcNow().AddSeconds(30).ToUnixTimeMilliseconds(), job.DeadlineUnixMs);
        time.Advance(TimeSpan.FromSeconds(31));
        using var response = await pending;

        Assert.Equal(HttpStatusCode.GatewayTimeout, response.StatusCode);
        var error = await AssertOpenAiErrorAsync(response, "timeout", ct);
        Assert.Equal("deadline_exceeded", error.GetProperty("code").GetString());
        Assert.Equal("deadline", (await provider.WaitForAsync<JobCancel>(_ => true).WaitAsync(TimeSpan.FromSeconds(30), ct)).Reason);
    }

    [Fact]
    public async Task A_bug_is_answered_with_a_logged_JSON_500()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await MarketUnderTest.StartAsync(builder: b => b.Services.AddSingleton<IInferenceBilling, ThrowingBilling>(), cancellationToken: ct);
        await using var provider = await market.ProviderAsync("llama3", ct);

        using var response = await market.Http.PostAsync("/v1/chat/completions",
            OpenAiApiTests.Json("""{"model":"llama3","messages":[{"role":"user","content":"x"}]}"""), ct);

        Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
        var error = await AssertOpenAiErrorAsync(response, "server_error", ct);
        Assert.Equal("internal_error", error.GetProperty("code").GetString());
    }

    [Fact]
    public async Task Billing_can_refuse_before_dispatch_with_its_status_headers_and_error()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await MarketUnderTest.StartAsync(builder: b => b.Services.AddSingleton<IInferenceBilling, RefusingBilling>(), cancellationToken: ct);
        await using var provider = await market.ProviderAsync("llama3", ct, inSats: 1000, outSats: 3000);

        const string body = """{"model":"llama3","max_tokens":100,"messages":[{"role":"user","content":"x"}]}""";
        using var response = await market.Http.PostAsync("/v1/chat/completions", OpenAiApiTests.Json(body), ct);

        Assert.Equal(HttpStatusCode.PaymentRequired, response.StatusCode);
        // Reserved at the chosen offer: 1 msat per input token (a token per 3 bytes of body) and 3 per output token.
        Assert.Equal($"{(body.Length + 2) / 3 + 300}", Assert.Single(response.Headers.GetValues("X-Cashu")));
        await AssertOpenAiErrorAsync(response, "payment_required", ct);
        Assert.Empty(provider.Jobs);
    }

    private static async Task<JsonElement> AssertOpenAiErrorAsync(HttpResponseMessage response, string type, CancellationToken ct)
    {
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync(ct));
        var error = doc.RootElement.GetProperty("error");
        Assert.Equal(type, error.GetProperty("type").GetString());
        Assert.False(string.IsNullOrEmpty(error.GetProperty("message").GetString()));
        return error.Clone();
    }

    private sealed class ThrowingBilling : IInferenceBilling
    {
        public long? BudgetMsat(HttpRequest http) => null;

        public ValueTask<bool> ResizeAsync(BillingReservation reservation, long reservationMsat, CancellationToken cancellationToken) => ValueTask.FromResult(true);

        public ValueTask<BillingReservation> ReserveAsync(BillingRequest request, CancellationToken cancellationToken) =>
            throw new InvalidOperationException("a bug");

        public ValueTask<BillingSettlement> SettleAsync(BillingReservation reservation, BillingUsage usage, CancellationToken cancellationToken) =>
            throw new InvalidOperationException("a bug");

        public ValueTask ReleaseAsync(BillingReservation reservation, BillingUsage? delivered, CancellationToken cancellationToken) => ValueTask.CompletedTask;
    }

    private sealed class RefusingBilling : IInferenceBilling
    {
        public long? BudgetMsat(HttpRequest http) => null;

        public ValueTask<bool> ResizeAsync(BillingReservation reservation, long reservationMsat, CancellationToken cancellationToken) => ValueTask.FromResult(true);

        public ValueTask<BillingReservation> ReserveAsync(BillingRequest request, CancellationToken cancellationToken) =>
            ValueTask.FromResult(BillingReservation.Refuse(
                new ApiError(402, "payment_required", "payment_required", "send ecash"),
                [new("X-Cashu", $"{request.ReservationMsat}")]));

        public ValueTask<BillingSettlement> SettleAsync(BillingReservation reservation, BillingUsage usage, CancellationToken cancellationToken) =>
            ValueTask.FromResult(BillingSettlement.Free);

        public ValueTask ReleaseAsync(BillingReservation reservation, BillingUsage? delivered, CancellationToken cancellationToken) => ValueTask.CompletedTask;
    }
}

public class BillingSeamTests
{
    [Fact]
    public async Task Settlement_headers_precede_a_whole_body_and_the_stream_trailer_precedes_DONE()
    {
        var ct = TestContext.Current.CancellationToken;
        var billing = new RecordingBilling();
        await using var market = await MarketUnderTest.StartAsync(builder: b => b.Services.AddSingleton<IInferenceBilling>(billing), cancellationToken: ct);
        await using var provider = await market.ProviderAsync("llama3", ct, inSats: 1000, outSats: 3000);

        using var whole = await market.Http.PostAsync("/v1/chat/completions",
            OpenAiApiTests.Json("""{"model":"llama3","messages":[{"role":"user","content":"x"}]}"""), ct);
        var stream = await Sse.PostAsync(market.Http, "/v1/chat/completions",
            """{"model":"llama3","stream":true,"messages":[{"role":"user","content":"x"}]}""", ct);
        var anthropic = await Sse.PostAsync(market.Http, "/v1/messages",
            """{"model":"llama3","max_tokens":9,"stream":true,"messages":[{"role":"user","content":"x"}]}""", ct);

        Assert.Equal("change-1", Assert.Single(whole.Headers.GetValues("X-Cashu")));
        Assert.Equal(["x-cashu change-2"], stream.Comments);
        Assert.EndsWith(": x-cashu change-2\n\ndata: [DONE]\n\n", stream.Raw, StringComparison.Ordinal);
        Assert.Contains(": x-cashu change-3\n\nevent: message_stop", anthropic.Raw, StringComparison.Ordinal);
        Assert.All(billing.Settled, s =>
        {
            Assert.Equal(provider.ProviderId, s.ProviderId);
            Assert.Equal(new Core.Protocol.TokenUsage(5, 7), s.Usage);
            Assert.Equal(1_000_000, s.Price.InputMsatPerMtok);
        });
        Assert.Equal(3, billing.Settled.Count);
        Assert.Equal(0, billing.Released);
    }

    [Fact]
    public async Task A_failed_job_releases_its_reservation()
    {
        var ct = TestContext.Current.CancellationToken;
        var billing = new RecordingBilling();
        await using var market = await MarketUnderTest.StartAsync(builder: b => b.Services.AddSingleton<IInferenceBilling>(billing), cancellationToken: ct);
        await using var provider = await market.ProviderAsync("llama3", ct, script: Scripts.Fail());

        using var response = await market.Http.PostAsync("/v1/chat/completions",
            OpenAiApiTests.Json("""{"model":"llama3","messages":[{"role":"user","content":"x"}]}"""), ct);

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Empty(billing.Settled);
        Assert.Equal(1, billing.Released);
    }

    private sealed class RecordingBilling : IInferenceBilling
    {
        private int _n;

        public List<BillingUsage> Settled { get; } = [];

        public int Released;

        public long? BudgetMsat(HttpRequest http) => null;

        public ValueTask<bool> ResizeAsync(BillingReservation reservation, long reservationMsat, CancellationToken cancellationToken) => ValueTask.FromResult(true);

        public ValueTask<BillingReservation> ReserveAsync(BillingRequest request, CancellationToken cancellationToken) =>
            ValueTask.FromResult(new BillingReservation(true, request.JobId));

        public ValueTask<BillingSettlement> SettleAsync(BillingReservation reservation, BillingUsage usage, CancellationToken cancellationToken)
        {
            lock (Settled)
            {
                Settled.Add(usage);
            }

            var token = "change-" + Interlocked.Increment(ref _n);
            return ValueTask.FromResult(new BillingSettlement([new("X-Cashu", token)], "x-cashu " + token, 42));
        }

        public ValueTask ReleaseAsync(BillingReservation reservation, BillingUsage? delivered, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref Released);
            return ValueTask.CompletedTask;
        }
    }
}
