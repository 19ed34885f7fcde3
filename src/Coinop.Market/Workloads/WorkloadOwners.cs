using Coinop.Core.Workloads;
using Coinop.Market.Inference;
using Coinop.Storage.Workloads;
using Microsoft.AspNetCore.Http;

namespace Coinop.Market.Workloads;

/// <summary>
/// The HTTP side of workload ownership (the rule is <see cref="WorkloadOwnerKey"/>): reading the owner key a request
/// carries, and answering a request without the right one with 401 or 403 before anything about the workload is said.
/// </summary>
internal static class WorkloadOwners
{
    /// <summary>The owner key the request carries, or "".</summary>
    public static string KeyOf(HttpRequest request) => request.Headers[WorkloadOwnerKey.Header].ToString();

    /// <summary>The workload, if it exists and the request carries its owner key; otherwise the error is sent and null returned.</summary>
    public static async Task<StoredWorkload?> FindOwnedAsync(HttpContext http, string id, IWorkloadStore store)
    {
        var stored = WorkloadIds.TryParse(id, out _) ? await store.FindAsync(id, http.RequestAborted) : null;
        if (stored is null)
        {
            await Error(http, new ApiError(404, "invalid_request_error", "workload_not_found", $"no workload '{id}'"));
            return null;
        }

        var check = WorkloadOwnerKey.Check(await store.OwnerHashAsync(id, http.RequestAborted), KeyOf(http.Request));
        switch (check)
        {
            case OwnerCheck.NoKey:
                await Error(http, KeyRequired());
                return null;
            case OwnerCheck.NotOwner:
                await Error(http, new ApiError(403, "permission_error", "not_the_owner",
                    $"workload '{id}' belongs to whoever submitted it: this {WorkloadOwnerKey.Header} is not the one it was submitted with"));
                return null;
            default:
                return stored;
        }
    }

    public static ApiError KeyRequired() => new(401, "authentication_error", "owner_key_required",
        $"workloads belong to their submitter: send the owner key the workload was submitted with in {WorkloadOwnerKey.Header} (coinop workload keeps it in its --data directory)");

    public static ApiError MalformedKey() => new(400, "invalid_request_error", "invalid_owner_key",
        $"{WorkloadOwnerKey.Header} must be 22 to 256 characters of A-Z, a-z, 0-9, '-', '_', '.', '~' (a secret of at least 128 bits), or absent");

    private static Task Error(HttpContext http, ApiError error) => error.WriteResponseAsync(http.Response, ErrorShape.OpenAi, http.RequestAborted);
}
