//! Downloads from and uploads into the files directory: `GET` and `PUT
//! /api/v1/files/{path}`, the bytes as the body both ways, streamed (disk images are
//! large). The control plane says where a path lands and refuses any that leave the
//! files directory; these handlers only move bytes.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use ferromega_domain::{ControlPlane, DomainError};
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterIn, PathItem};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::{ContentBuilder, PathsBuilder};

use crate::error::ApiError;

/// Bytes read from a file per chunk of a download.
const CHUNK: usize = 256 * 1024;

/// The download and upload routes.
pub(crate) fn router() -> Router<ControlPlane> {
    Router::new().route("/api/v1/files/{*path}", get(file_download).put(file_upload))
}

/// `GET /api/v1/files/{path}`: the file's bytes.
async fn file_download(
    State(cp): State<ControlPlane>,
    Path(rel): Path<String>,
) -> Result<Response, ApiError> {
    let host = cp.host().to_string();
    let path = cp
        .file_for_download(&rel)
        .map_err(|e| ApiError::domain(&host, &e))?;
    let host_err = |e: std::io::Error| ApiError::domain(&host, &DomainError::Host(e.to_string()));
    let file = tokio::fs::File::open(&path).await.map_err(host_err)?;
    let len = file.metadata().await.map_err(host_err)?.len();
    let stream = futures_util::stream::unfold(file, |mut f| async move {
        let mut buf = vec![0u8; CHUNK];
        match f.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(buf), f))
            }
            Err(e) => Some((Err(e), f)),
        }
    });
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().replace(['"', '\\'], "_"))
        .unwrap_or_default();
    let mut resp = Body::from_stream(stream).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

/// `PUT /api/v1/files/{path}`: the body becomes a new file. It is written beside its
/// place and renamed into it when complete, so a broken upload leaves nothing behind.
async fn file_upload(
    State(cp): State<ControlPlane>,
    Path(rel): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let host = cp.host().to_string();
    let dest = cp
        .file_for_upload(&rel)
        .map_err(|e| ApiError::domain(&host, &e))?;
    let tmp = dest.with_file_name(format!(".upload-{}", uuid::Uuid::new_v4().simple()));
    let written = async {
        let mut f = tokio::fs::File::create(&tmp).await?;
        let mut n = 0u64;
        let mut chunks = body.into_data_stream();
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.map_err(std::io::Error::other)?;
            n += chunk.len() as u64;
            f.write_all(&chunk).await?;
        }
        f.sync_all().await?;
        // Another upload may have taken the name meanwhile: never overwrite it.
        if tokio::fs::symlink_metadata(&dest).await.is_ok() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                format!("file exists: {rel}"),
            ));
        }
        tokio::fs::rename(&tmp, &dest).await?;
        Ok::<u64, std::io::Error>(n)
    }
    .await;
    match written {
        Ok(n) => Ok((StatusCode::CREATED, format!("{n} bytes written to {rel}\n")).into_response()),
        Err(e) => {
            let _ = tokio::fs::remove_file(&tmp).await;
            let err = if e.kind() == std::io::ErrorKind::AlreadyExists {
                DomainError::Conflict(e.to_string())
            } else {
                DomainError::Host(format!("upload of {rel}: {e}"))
            };
            Err(ApiError::domain(&host, &err))
        }
    }
}

/// Adds the download and upload endpoints to the OpenAPI `paths`.
pub fn paths(paths: PathsBuilder) -> PathsBuilder {
    let param = || {
        crate::live::spec::param(
            "path",
            ParameterIn::Path,
            true,
            "a path inside the files directory",
        )
    };
    let bytes = || {
        ContentBuilder::new()
            .schema(Some(
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .format(Some(utoipa::openapi::schema::SchemaFormat::KnownFormat(
                        utoipa::openapi::schema::KnownFormat::Binary,
                    ))),
            ))
            .build()
    };
    let download = OperationBuilder::new()
        .operation_id(Some("file_download"))
        .summary(Some("download a file of the files directory"))
        .tag("files")
        .parameter(param())
        .response(
            "200",
            ResponseBuilder::new()
                .description("the file's bytes")
                .content("application/octet-stream", bytes())
                .build(),
        )
        .response(
            "400",
            crate::live::spec::error("the path leaves the files directory"),
        )
        .response("404", crate::live::spec::error("no such file"));
    let upload = OperationBuilder::new()
        .operation_id(Some("file_upload"))
        .summary(Some("upload a new file into the files directory"))
        .description(Some(
            "The request body is the file's bytes. Folders on the way are created; an \
             existing file is never replaced.",
        ))
        .tag("files")
        .parameter(param())
        .request_body(Some(
            utoipa::openapi::request_body::RequestBodyBuilder::new()
                .content("application/octet-stream", bytes())
                .build(),
        ))
        .response(
            "201",
            ResponseBuilder::new()
                .description("written; the body says how many bytes")
                .build(),
        )
        .response(
            "400",
            crate::live::spec::error("the path leaves the files directory or names no file"),
        )
        .response("409", crate::live::spec::error("the file exists"));
    let mut item = PathItem::new(HttpMethod::Get, download);
    item.put = Some(upload.build());
    paths.path("/api/v1/files/{path}", item)
}
