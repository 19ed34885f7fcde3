using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Coinop.Core.Workloads;
using Coinop.Workloads.Tests.Infrastructure;

namespace Coinop.Workloads.Tests;

/// <summary>The HTTP API's shape, signed usage that verifies with the provider's key, and clear 4xx answers to bad input.</summary>
public sealed class ApiTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_finished_workload_shows_its_history_and_usage_signed_by_its_provider()
    {
        await using var cluster = await WorkloadCluster.StartAsync(providers: 1);
        var provider = cluster.Providers[0];
        var workload = new TestWorkload("echo hello; i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; echo bye");
        using var watch = workload.Watch();
        try
        {
            var id = (string)(await cluster.SubmitAsync(workload.Request()))["id"]!;
            var done = await cluster.WaitForStateAsync(id, "completed");

            // The fields the issue lists, with their types.
            Assert.Equal(id, (string?)done["id"]);
            Assert.Equal("exited", (string?)done["reason"]);
            Assert.Equal(provider.Id, (string?)done["provider"]);
            Assert.Empty(done["standbys"]!.AsArray());
            Assert.Equal(1, (long)done["epoch"]!);
            Assert.Equal(0, (int)done["attempts"]!);
            Assert.Equal(["provisioning", "live", "completed"], FailoverTests.States(done));
            Assert.All(done["history"]!.AsArray(), h =>
            {
                Assert.Equal(provider.Id, (string?)h!["provider"]);
                Assert.True(DateTimeOffset.TryParse((string?)h["at"], System.Globalization.CultureInfo.InvariantCulture, out _));
            });

            // Every usage record is the provider's own signature over the exact bytes, checkable without the market.
            var providers = JsonNode.Parse(await cluster.Http.GetStringAsync(cluster.Url + "/api/providers", Ct))!.AsArray();
            var providerKey = (string?)providers.Single(p => (string?)p!["id"] == provider.Id)!["public_key"];
            var usage = done["usage"]!.AsArray();
            Assert.NotEmpty(usage);
            var wall = 0.0;
            foreach (var u in usage)
            {
                var signed = new SignedUsageRecord((string)u!["payload"]!, (string)u["signature"]!, (string)u["public_key"]!);
                Assert.Equal(providerKey, signed.PublicKey);
                var record = UsageRecord.Verify(signed);
                Assert.NotNull(record);
                Assert.Equal((id, 1L), (record.WorkloadId, record.Epoch));
                var payload = JsonNode.Parse(Convert.FromBase64String(signed.Payload))!.AsObject();
                foreach (var field in new[] { "cpu_core_seconds", "memory_mib_seconds", "net_bytes", "wall_seconds", "window_start", "window_end", "epoch" })
                {
                    Assert.True(payload.ContainsKey(field), $"the usage payload lacks {field}: {payload}");
                }

                wall += record.WallSeconds;
                var tampered = Encoding.UTF8.GetString(Convert.FromBase64String(signed.Payload)).Replace("\"epoch\":1", "\"epoch\":2", StringComparison.Ordinal);
                Assert.Null(UsageRecord.Verify(signed with { Payload = Convert.ToBase64String(Encoding.UTF8.GetBytes(tampered)) }));
            }

            Assert.True(wall > 0, "the copy ran for no measurable time");
            var logs = JsonNode.Parse(await cluster.Http.GetStringAsync($"{cluster.Url}/api/workloads/{id}/logs", Ct))!;
            var text = string.Concat(logs["entries"]!.AsArray().Select(e => Encoding.UTF8.GetString(Convert.FromBase64String((string)e!["data"]!))));
            Assert.Equal("hello\nbye\n", text);
            var list = JsonNode.Parse(await cluster.Http.GetStringAsync(cluster.Url + "/api/workloads", Ct))!.AsArray();
            Assert.Contains(list, w => (string?)w!["id"] == id && (string?)w["state"] == "completed");
            watch.AssertSingleWriter();
        }
        catch (Exception ex) when (ex is not Xunit.Sdk.XunitException)
        {
            throw new InvalidOperationException(ex.Message + "\n" + cluster.Diagnostics(), ex);
        }
    }

    [Fact]
    public async Task Bad_input_gets_a_4xx_with_a_json_error_and_unknown_ids_a_404()
    {
        await using var cluster = await WorkloadCluster.StartAsync(providers: 1);
        var url = cluster.Url + "/api/workloads";
        var good = TestWorkload.Forever();

        await ExpectAsync(HttpStatusCode.BadRequest, "JSON object", Post(url, "not json"));
        await ExpectAsync(HttpStatusCode.BadRequest, "'command' is required", Post(url, "{\"args\":[\"x\"]}"));
        await ExpectAsync(HttpStatusCode.BadRequest, "cpu must be", Post(url, good.Request(new { cpu = 0 })));
        await ExpectAsync(HttpStatusCode.BadRequest, "memory must be", Post(url, good.Request(new { memory_mb = 1 })));
        await ExpectAsync(HttpStatusCode.BadRequest, "on-failure:N", Post(url, good.Request(new { restart = "always" })));
        await ExpectAsync(HttpStatusCode.BadRequest, "duration_seconds", Post(url, good.Request(new { duration_seconds = -5 })));
        await ExpectAsync(HttpStatusCode.BadRequest, "standbys must be", Post(url, good.Request(new { standbys = 99 })));
        await ExpectAsync(HttpStatusCode.BadRequest, "sealed_keys", Post(url, good.Request(new { checkpointed = true })));
        await ExpectAsync(HttpStatusCode.BadRequest, "seal_to", Post(url, good.Request(new { port = 8080 })));
        await ExpectAsync(HttpStatusCode.BadRequest, "'id'", Post(url, good.Request(new { id = "../../etc" })));
        await ExpectAsync(HttpStatusCode.ServiceUnavailable, "no provider online has room", Post(url, good.Request(new { cpu = 64 })));
        await ExpectAsync(HttpStatusCode.ServiceUnavailable, "1 standbys need", Post(url, good.Request(new { standbys = 1 })));
        await ExpectAsync(HttpStatusCode.ServiceUnavailable, "'nobody' is not online", Post(url, good.Request(new { provider = "nobody" })));

        var unknown = Guid.NewGuid().ToString("N");
        await ExpectAsync(HttpStatusCode.NotFound, "no workload", cluster.Http.GetAsync($"{url}/{unknown}", Ct));
        await ExpectAsync(HttpStatusCode.NotFound, "no workload", cluster.Http.GetAsync($"{url}/not-an-id", Ct));
        await ExpectAsync(HttpStatusCode.NotFound, "no workload", cluster.Http.DeleteAsync($"{url}/{unknown}", Ct));
        await ExpectAsync(HttpStatusCode.NotFound, "no workload", cluster.Http.GetAsync($"{url}/{unknown}/logs", Ct));
        await ExpectAsync(HttpStatusCode.NotFound, "no workload", Post($"{url}/{unknown}/topup", "{\"duration_seconds\":60}"));

        var id = (string)(await cluster.SubmitAsync(good.Request(new { duration_seconds = 600 })))["id"]!;
        await ExpectAsync(HttpStatusCode.BadRequest, "duration_seconds", Post($"{url}/{id}/topup", "{\"duration_seconds\":0}"));
        await ExpectAsync(HttpStatusCode.BadRequest, "'after'", cluster.Http.GetAsync($"{url}/{id}/logs?after=x", Ct));
        await ExpectAsync(HttpStatusCode.NotFound, "access receipt", cluster.Http.GetAsync($"{url}/{id}/access", Ct));
        await ExpectAsync(HttpStatusCode.Conflict, "exists", Post(url, good.Request(new { id })));

        var before = DateTimeOffset.Parse((string)(await cluster.GetAsync(id))["paid_until"]!, System.Globalization.CultureInfo.InvariantCulture);
        using var topped = await Post($"{url}/{id}/topup", "{\"duration_seconds\":60}");
        Assert.Equal(HttpStatusCode.OK, topped.StatusCode);
        var after = DateTimeOffset.Parse((string)JsonNode.Parse(await topped.Content.ReadAsStringAsync(Ct))!["paid_until"]!, System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal(TimeSpan.FromSeconds(60), after - before);

        using var cancelled = await cluster.Http.DeleteAsync($"{url}/{id}", Ct);
        Assert.Equal(HttpStatusCode.OK, cancelled.StatusCode);
        await ExpectAsync(HttpStatusCode.Conflict, "workload is cancelled", Post($"{url}/{id}/topup", "{\"duration_seconds\":60}"));

        Task<HttpResponseMessage> Post(string to, object body) => cluster.Http.PostAsync(to,
            new StringContent(body as string ?? ((JsonObject)body).ToJsonString(), Encoding.UTF8, "application/json"), Ct);
    }

    private static async Task ExpectAsync(HttpStatusCode status, string message, Task<HttpResponseMessage> call)
    {
        using var response = await call;
        var body = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == status, $"expected {(int)status}, got {(int)response.StatusCode}: {body}");
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        if (status == HttpStatusCode.ServiceUnavailable)
        {
            Assert.True(response.Headers.RetryAfter?.Delta > TimeSpan.Zero, $"a 503 without Retry-After: {body}"); // the consumer may come back
        }

        var error = JsonDocument.Parse(body).RootElement.GetProperty("error").GetProperty("message").GetString();
        Assert.Contains(message, error, StringComparison.Ordinal);
    }
}
