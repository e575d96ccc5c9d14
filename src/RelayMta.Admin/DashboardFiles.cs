using System.Collections.Frozen;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.StaticFiles;

namespace RelayMta.Admin;

/// <summary>
/// The live dashboard: whatever files are in <c>Dashboard/</c> at build time, embedded in this
/// assembly and served from memory: <c>GET /</c> gives <c>index.html</c>, <c>GET /dashboard/{path}</c>
/// the others. Nothing is read from disk, so no request can reach outside the set.
/// </summary>
internal static class DashboardFiles
{
    private const string Prefix = "Dashboard/";
    private const string Placeholder = """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><title>RelayMta</title></head>
        <body><h1>RelayMta</h1><p>This build has no dashboard. The API is at <code>/api/queue</code>, metrics at <code>/metrics</code>.</p></body>
        </html>
        """;

    private static readonly Lazy<FrozenDictionary<string, File>> Files = new(Load);

    /// <summary>The embedded files by path below <c>Dashboard/</c> (e.g. "app.js").</summary>
    internal static IReadOnlyDictionary<string, File> All => Files.Value;

    public static void Map(IEndpointRouteBuilder app)
    {
        app.MapGet("/", (HttpContext context) => Serve(context, "index.html"));
        app.MapGet("/dashboard/{**path}", (HttpContext context, string path) => Serve(context, path));
    }

    private static IResult Serve(HttpContext context, string path)
    {
        if (!Files.Value.TryGetValue(path, out var file))
        {
            if (path != "index.html") return AdminApi.Error(StatusCodes.Status404NotFound, $"no dashboard file '{path}'");
            file = new File(Encoding.UTF8.GetBytes(Placeholder), "text/html; charset=utf-8", "\"placeholder\"");
        }
        var headers = context.Response.Headers;
        headers.ETag = file.ETag;
        headers.CacheControl = "no-cache"; // revalidate: a new build must show at once
        // Everything the page needs is ours: no inline script, nothing from elsewhere, no framing.
        headers.ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
                                        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
        headers.XContentTypeOptions = "nosniff";
        headers["Referrer-Policy"] = "no-referrer";
        headers.XContentTypeOptions = "nosniff";
        headers.XFrameOptions = "DENY";
        headers["Referrer-Policy"] = "no-referrer";
        if (context.Request.Headers.IfNoneMatch == file.ETag) return Results.StatusCode(StatusCodes.Status304NotModified);
        return Results.Bytes(file.Content, file.ContentType);
    }

    private static FrozenDictionary<string, File> Load()
    {
        var assembly = typeof(DashboardFiles).Assembly;
        var types = new FileExtensionContentTypeProvider();
        var files = new Dictionary<string, File>(StringComparer.Ordinal);
        foreach (var name in assembly.GetManifestResourceNames())
        {
            var path = name.Replace('\\', '/');
            if (!path.StartsWith(Prefix, StringComparison.Ordinal)) continue;
            path = path[Prefix.Length..];
            using var stream = assembly.GetManifestResourceStream(name)!;
            using var buffer = new MemoryStream();
            stream.CopyTo(buffer);
            var content = buffer.ToArray();
            if (!types.TryGetContentType(path, out var type)) type = "application/octet-stream";
            if (type.StartsWith("text/", StringComparison.Ordinal) || type is "application/json" or "image/svg+xml") type += "; charset=utf-8";
            var etag = "\"" + Convert.ToHexStringLower(SHA256.HashData(content))[..16] + "\"";
            files[path] = new File(content, type, etag);
        }
        return files.ToFrozenDictionary(StringComparer.Ordinal);
    }

    internal sealed record File(byte[] Content, string ContentType, string ETag);
}
