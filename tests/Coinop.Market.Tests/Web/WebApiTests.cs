using System.Net;
using System.Net.Http.Headers;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using Coinop.Core.Protocol;
using Coinop.Market.Tests.TestProviders;
using Coinop.Market.Web;

namespace Coinop.Market.Tests.Web;

/// <summary>The web pages' JSON endpoints on a real market: who may call them, and what bad input gets.</summary>
public sealed class WebApiTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData("GET", "/api/admin/money")]
    [InlineData("GET", "/api/admin/traffic")]
    [InlineData("GET", "/api/admin/providers")]
    [InlineData("GET", "/api/admin/workloads")]
    [InlineData("POST", "/api/admin/enrollment-codes")]
    [InlineData("POST", "/api/admin/providers/p1/park")]
    [InlineData("POST", "/api/admin/providers/p1/revoke")]
    [InlineData("GET", "/api/ledger/summary")]
    public async Task Operator_endpoints_refuse_no_token_a_wrong_token_and_a_forged_cookie(string method, string path)
    {
        await using var market = await MarketUnderTest.StartAsync(cancellationToken: Ct);
        foreach (var credential in (string?[])[null, "Bearer adm_wrong", "Bearer " + Token(market) + "x", "cookie"])
        {
            using var request = new HttpRequestMessage(new HttpMethod(method), path) { Content = method == "POST" ? Json("{}") : null };
            if (credential == "cookie")
            {
                request.Headers.Add("Cookie", $"{AdminAuth.CookieName}={AdminAuth.CookieValue("adm_wrong")}");
            }
            else if (credential is not null)
            {
                request.Headers.Authorization = AuthenticationHeaderValue.Parse(credential);
            }

            using var response = await market.Http.SendAsync(request, Ct);
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
            using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync(Ct));
            Assert.Equal("unauthorized", body.RootElement.GetProperty("error").GetProperty("code").GetString());
        }
    }

    [Fact]
    public async Task The_admin_page_is_a_sign_in_form_until_the_token_is_given_then_a_cookie_opens_page_and_api()
    {
        await using var market = await MarketUnderTest.StartAsync(cancellationToken: Ct);
        using var http = new HttpClient(new HttpClientHandler { UseCookies = false, AllowAutoRedirect = false }) { BaseAddress = new Uri(market.Url) };
        using (var pageRequest = new HttpRequestMessage(HttpMethod.Get, "/admin"))
        {
            pageRequest.Headers.Add("Accept", "text/html,application/xhtml+xml,*/*;q=0.8"); // a browser's
            using var page = await http.SendAsync(pageRequest, Ct);
            Assert.Equal(HttpStatusCode.Unauthorized, page.StatusCode);
            Assert.Contains("Operator sign-in", await page.Content.ReadAsStringAsync(Ct));
        }

        // A client that does not ask for a page (a script, curl) gets the refusal as JSON, like every other endpoint's.
        using (var script = await http.GetAsync("/admin", Ct))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, script.StatusCode);
            using var error = JsonDocument.Parse(await script.Content.ReadAsStringAsync(Ct));
            Assert.Equal("unauthorized", error.RootElement.GetProperty("error").GetProperty("code").GetString());
        }

        using (var wrong = await http.PostAsync("/admin/login", new FormUrlEncodedContent([new("token", "adm_guess")]), Ct))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, wrong.StatusCode);
            Assert.False(wrong.Headers.Contains("Set-Cookie"));
        }

        using var signIn = await http.PostAsync("/admin/login", new FormUrlEncodedContent([new("token", Token(market))]), Ct);
        Assert.Equal(HttpStatusCode.Redirect, signIn.StatusCode);
        var cookie = Assert.Single(signIn.Headers.GetValues("Set-Cookie"));
        Assert.Contains("httponly", cookie, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("samesite=strict", cookie, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain(Token(market), cookie, StringComparison.Ordinal); // a hash of the token, never the token

        using var admin = new HttpRequestMessage(HttpMethod.Get, "/admin");
        admin.Headers.Add("Cookie", cookie.Split(';')[0]);
        using var adminPage = await http.SendAsync(admin, Ct);
        Assert.Equal(HttpStatusCode.OK, adminPage.StatusCode);
        Assert.Contains("admin.js", await adminPage.Content.ReadAsStringAsync(Ct));

        using var money = new HttpRequestMessage(HttpMethod.Get, "/api/admin/money");
        money.Headers.Add("Cookie", cookie.Split(';')[0]);
        Assert.Equal(HttpStatusCode.OK, (await http.SendAsync(money, Ct)).StatusCode);
    }

    [Fact]
    public async Task An_action_with_the_cookie_but_no_json_body_is_refused_so_another_site_cannot_post_a_form()
    {
        await using var market = await MarketUnderTest.StartAsync(cancellationToken: Ct);
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/admin/enrollment-codes")
        {
            Content = new FormUrlEncodedContent([new("uses", "1000")]),
        };
        request.Headers.Add("Cookie", $"{AdminAuth.CookieName}={AdminAuth.CookieValue(Token(market))}");
        using var response = await market.Http.SendAsync(request, Ct);
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, response.StatusCode);
    }

    [Theory]
    [InlineData("/api/admin/enrollment-codes", "not json", "invalid_body")]
    [InlineData("/api/admin/enrollment-codes", "[1,2]", "invalid_body")]
    [InlineData("/api/admin/enrollment-codes", """{"uses":0}""", "invalid_body")]
    [InlineData("/api/admin/enrollment-codes", """{"uses":"many"}""", "invalid_body")]
    [InlineData("/api/admin/enrollment-codes", """{"valid_for_seconds":1e308}""", "invalid_body")]
    [InlineData("/api/admin/enrollment-codes", """{"valid_for_seconds":-5}""", "invalid_body")]
    [InlineData("/api/admin/providers/nobody/park", """{"seconds":60}""", "provider_not_connected")]
    [InlineData("/api/admin/providers/nobody/park", """{"seconds":-1}""", "invalid_body")]
    [InlineData("/api/admin/providers/nobody/park", """{}""", "invalid_body")]
    [InlineData("/api/admin/providers/nobody/revoke", """{}""", "unknown_provider")]
    public async Task Bad_action_bodies_get_a_4xx_with_a_json_error(string path, string body, string code)
    {
        await using var market = await MarketUnderTest.StartAsync(cancellationToken: Ct);
        using var response = await AdminAsync(market, HttpMethod.Post, path, body);
        Assert.InRange((int)response.StatusCode, 400, 499);
        using var error = JsonDocument.Parse(await response.Content.ReadAsStringAsync(Ct));
        Assert.Equal(code, error.RootElement.GetProperty("error").GetProperty("code").GetString());
    }

    [Theory]
    [InlineData("/api/admin/money?window=forever")]
    [InlineData("/api/admin/traffic?window=0s")]
    [InlineData("/api/admin/traffic?window=400d")]
    public async Task A_bad_window_is_a_400(string path)
    {
        await using var market = await MarketUnderTest.StartAsync(cancellationToken: Ct);
        using var response = await AdminAsync(market, HttpMethod.Get, path);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
    }

    [Fact]
    public async Task A_revoked_provider_is_disconnected_and_its_identity_can_never_connect_again()
    {
        await using var market = await MarketUnderTest.StartAsync(cancellationToken: Ct);
        await using var provider = await market.ProviderAsync("llama3", Ct, name: "rogue");
        using var key = TestProvider.NewKeyFrom(provider.Key);

        using var revoke = await AdminAsync(market, HttpMethod.Post, $"/api/admin/providers/{provider.ProviderId}/revoke", """{"reason":"served garbage"}""");
        Assert.Equal(HttpStatusCode.OK, revoke.StatusCode);
        var closed = await provider.Closed.WaitAsync(TimeSpan.FromSeconds(30), Ct);
        Assert.Equal((WebSocketCloseStatus)CloseCodes.AuthFailed, closed.Status);

        await using var again = await TestProvider.ConnectAsync(market.Url, "rogue", key: key, cancellationToken: Ct);
        Assert.Equal("revoked", again.AuthFailed?.Reason);
        Assert.Null(market.Directory.Find(provider.ProviderId));

        using var list = await AdminAsync(market, HttpMethod.Get, "/api/admin/providers");
        using var body = JsonDocument.Parse(await list.Content.ReadAsStringAsync(Ct));
        var row = body.RootElement.GetProperty("providers").EnumerateArray().Single(p => p.GetProperty("id").GetString() == provider.ProviderId);
        Assert.Equal("revoked", row.GetProperty("link").GetString());
        Assert.Equal("served garbage", row.GetProperty("revoked_reason").GetString());
    }

    [Fact]
    public async Task A_parked_provider_gets_no_jobs_until_it_is_unparked()
    {
        await using var market = await MarketUnderTest.StartAsync(cancellationToken: Ct);
        await using var provider = await market.ProviderAsync("llama3", Ct);
        using var park = await AdminAsync(market, HttpMethod.Post, $"/api/admin/providers/{provider.ProviderId}/park", """{"seconds":600}""");
        Assert.Equal(HttpStatusCode.OK, park.StatusCode);

        using var refused = await market.Http.PostAsync("/v1/chat/completions", Json("""{"model":"llama3","messages":[{"role":"user","content":"hi"}]}"""), Ct);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);

        using var unpark = await AdminAsync(market, HttpMethod.Post, $"/api/admin/providers/{provider.ProviderId}/park", """{"seconds":0}""");
        Assert.Equal(HttpStatusCode.OK, unpark.StatusCode);
        using var served = await market.Http.PostAsync("/v1/chat/completions", Json("""{"model":"llama3","messages":[{"role":"user","content":"hi"}]}"""), Ct);
        Assert.Equal(HttpStatusCode.OK, served.StatusCode);
    }

    [Fact]
    public async Task An_enrollment_code_issued_by_the_operator_admits_a_provider_to_a_code_only_market()
    {
        await using var market = await MarketUnderTest.StartAsync(o => o.Enrollment = Market.Hosting.EnrollmentMode.Code, cancellationToken: Ct);
        using var issued = await AdminAsync(market, HttpMethod.Post, "/api/admin/enrollment-codes", """{"uses":1,"valid_for_seconds":600}""");
        using var code = JsonDocument.Parse(await issued.Content.ReadAsStringAsync(Ct));
        var text = code.RootElement.GetProperty("code").GetString()!;
        Assert.StartsWith("COINOP-", text);

        await using var provider = await TestProvider.ConnectAsync(market.Url, "newcomer", enrollmentCode: text, cancellationToken: Ct);
        Assert.NotNull(provider.AuthOk);
        await using var second = await TestProvider.ConnectAsync(market.Url, "late", enrollmentCode: text, cancellationToken: Ct);
        Assert.Equal("enrollment_code_used_up", second.AuthFailed?.Reason);
    }

    [Fact]
    public async Task The_live_events_carry_a_provider_that_connects_while_listening()
    {
        await using var market = await MarketUnderTest.StartAsync(cancellationToken: Ct);
        using var events = await market.Http.GetAsync("/api/market/events", HttpCompletionOption.ResponseHeadersRead, Ct);
        Assert.Equal("text/event-stream", events.Content.Headers.ContentType?.MediaType);
        using var reader = new StreamReader(await events.Content.ReadAsStreamAsync(Ct));
        var first = await NextOverviewAsync(reader);
        Assert.Equal(0, first.GetProperty("providers").GetArrayLength());

        await using var provider = await market.ProviderAsync("llama3", Ct, name: "joiner");
        JsonElement overview;
        do
        {
            overview = await NextOverviewAsync(reader);
        }
        while (overview.GetProperty("providers").GetArrayLength() == 0);

        var card = overview.GetProperty("providers")[0];
        Assert.Equal("joiner", card.GetProperty("name").GetString());
        Assert.Equal("online", card.GetProperty("state").GetString());
        Assert.Equal("llama3", overview.GetProperty("models")[0].GetProperty("model").GetString());
    }

    [Fact]
    public async Task A_qr_code_is_svg_and_text_too_long_for_one_is_a_400()
    {
        await using var market = await MarketUnderTest.StartAsync(cancellationToken: Ct);
        using var ok = await market.Http.PostAsync("/api/qr", new StringContent("cashuBtoken", Encoding.UTF8, "text/plain"), Ct);
        Assert.Equal("image/svg+xml", ok.Content.Headers.ContentType?.MediaType);
        Assert.StartsWith("<svg", (await ok.Content.ReadAsStringAsync(Ct)).TrimStart()[..4], StringComparison.Ordinal);

        using var tooLong = await market.Http.PostAsync("/api/qr", new StringContent(new string('a', 10_000)), Ct);
        Assert.Equal(HttpStatusCode.BadRequest, tooLong.StatusCode);
        using var notText = await market.Http.PostAsync("/api/qr", new ByteArrayContent([0xff, 0xfe, 0xfd]), Ct);
        Assert.Equal(HttpStatusCode.BadRequest, notText.StatusCode);
    }

    [Theory]
    [InlineData(null, HttpStatusCode.Unauthorized)]
    [InlineData("sk-not-a-key", HttpStatusCode.Unauthorized)]
    [InlineData("cashuBnot-a-token", HttpStatusCode.Unauthorized)]
    public async Task Balance_charges_without_a_balance_are_refused(string? bearer, HttpStatusCode status)
    {
        await using var market = await MarketUnderTest.StartAsync(cancellationToken: Ct);
        using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/balance/charges");
        if (bearer is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
        }

        using var response = await market.Http.SendAsync(request, Ct);
        Assert.Equal(status, response.StatusCode);
    }

    [Fact]
    public async Task Pages_are_served_with_a_policy_that_allows_only_this_origin()
    {
        await using var market = await MarketUnderTest.StartAsync(cancellationToken: Ct);
        foreach (var path in (string[])["/", "/balance", "/static/site.css", "/static/common.js"])
        {
            using var response = await market.Http.GetAsync(path, Ct);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(WebAssets.ContentSecurityPolicy, response.Headers.GetValues("Content-Security-Policy").Single());
            var text = await response.Content.ReadAsStringAsync(Ct);
            Assert.DoesNotContain("https://", text, StringComparison.Ordinal); // nothing from elsewhere
        }

        using var missing = await market.Http.GetAsync("/static/../admin.html", Ct);
        Assert.NotEqual(HttpStatusCode.OK, missing.StatusCode);
    }

    private static async Task<JsonElement> NextOverviewAsync(StreamReader reader)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(60));
        while (await reader.ReadLineAsync(timeout.Token) is { } line)
        {
            if (line.StartsWith("data: ", StringComparison.Ordinal))
            {
                return JsonDocument.Parse(line[6..]).RootElement.Clone();
            }
        }

        throw new InvalidOperationException("the event stream ended");
    }

    private static string Token(MarketUnderTest market) => File.ReadAllText(Path.Combine(market.Options.DataDir, "admin.token")).Trim();

    private static StringContent Json(string body) => new(body, Encoding.UTF8, "application/json");

    private static Task<HttpResponseMessage> AdminAsync(MarketUnderTest market, HttpMethod method, string path, string? body = null)
    {
        var request = new HttpRequestMessage(method, path) { Content = body is null ? null : Json(body) };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", Token(market));
        return market.Http.SendAsync(request, Ct);
    }
}
