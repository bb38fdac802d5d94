//! The errors an operation can answer whatever its handler does.

const PROBLEM: &str = "#/components/schemas/Problem";
const PROBLEM_JSON: &str = "application/problem+json";

/// The errors an operation can answer whatever its handler does, because a layer, an extractor
/// or the caller's credentials produce them, each documented with the body it really has:
/// problem+json for the API, an HTML page for the hosted pages. Handlers document only their
/// own outcomes; a `Problem` they name is moved to `application/problem+json` here.
pub(super) fn document_errors(doc: &mut serde_json::Value) {
    let Some(paths) = doc.get_mut("paths").and_then(|p| p.as_object_mut()) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let page = path.starts_with("/pay/");
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, operation) in item.iter_mut() {
            if !["get", "put", "post", "delete", "patch"].contains(&method.as_str()) {
                continue;
            }
            let has_body = operation.get("requestBody").is_some();
            let secured = operation.get("security").is_some();
            let has_path_params = path.contains('{');
            let Some(responses) = operation
                .get_mut("responses")
                .and_then(|r| r.as_object_mut())
            else {
                continue;
            };
            for (status, response) in responses.iter_mut() {
                if response.get("description").is_none() {
                    let reason = status
                        .parse::<u16>()
                        .ok()
                        .and_then(|code| axum::http::StatusCode::from_u16(code).ok())
                        .and_then(|code| code.canonical_reason())
                        .unwrap_or("the answer");
                    response["description"] = reason.into();
                }
                move_problem_to_problem_json(response);
                // An error documented without a body has the body every error has.
                let is_error = status.starts_with('4') || status.starts_with('5');
                if is_error && response.get("content").is_none() {
                    let description = response["description"].as_str().unwrap_or_default();
                    *response = error_response(description, page);
                }
            }
            let mut common: Vec<(&str, &str)> = vec![
                (
                    "400",
                    "malformed: a body that is not JSON, a query or path that cannot be read, or a NUL character in the URL",
                ),
                ("408", "the request took over 30 s"),
                (
                    "500",
                    "an internal error (its details are logged, never shown)",
                ),
            ];
            if has_body || method != "get" {
                common.push((
                    "413",
                    "the body is over 1 MiB (over 256 bytes on a route that takes none)",
                ));
            }
            // A provider's webhook takes its own format, whatever it says it is.
            if has_body && !path.contains("/webhooks/") {
                common.push((
                    "415",
                    "the body is not `application/json` (optionally `; charset=utf-8`)",
                ));
            }
            common.push(("422", "a field, a parameter or the body's shape is invalid"));
            if secured {
                common.push(("401", "no valid access token or API key"));
                common.push(("403", "the caller may not do this"));
            }
            if has_path_params {
                common.push(("404", "no such resource (or one the caller may not see)"));
            }
            for (status, description) in common {
                responses
                    .entry(status)
                    .or_insert_with(|| error_response(description, page));
            }
            if page {
                for response in responses.values_mut() {
                    problem_to_html(response);
                }
            }
        }
    }
}

fn error_response(description: &str, page: bool) -> serde_json::Value {
    if page {
        serde_json::json!({"description": description,
            "content": {"text/html": {"schema": {"type": "string"}}}})
    } else {
        serde_json::json!({"description": description,
            "content": {PROBLEM_JSON: {"schema": {"$ref": PROBLEM}}}})
    }
}

/// A response whose JSON body is a `Problem` is `application/problem+json`.
fn move_problem_to_problem_json(response: &mut serde_json::Value) {
    let Some(content) = response.get_mut("content").and_then(|c| c.as_object_mut()) else {
        return;
    };
    let is_problem = content
        .get("application/json")
        .and_then(|json| json.pointer("/schema/$ref"))
        .is_some_and(|r| r == PROBLEM);
    if is_problem && let Some(json) = content.remove("application/json") {
        content.insert(PROBLEM_JSON.to_string(), json);
    }
}

/// On a hosted page every error is an HTML page.
fn problem_to_html(response: &mut serde_json::Value) {
    let Some(content) = response.get_mut("content").and_then(|c| c.as_object_mut()) else {
        return;
    };
    if content.remove(PROBLEM_JSON).is_some() {
        content.insert(
            "text/html".to_string(),
            serde_json::json!({"schema": {"type": "string"}}),
        );
    }
}
