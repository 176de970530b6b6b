# Bench client (Python imaplib, as the peer email-oauth2-proxy was measured): bulk FETCH of a folder, one FETCH per
# message, and connect + login + SELECT latency, against the proxy (LOGIN) or Dovecot directly (XOAUTH2). Prints JSON.
# Env: MODE=proxy|direct PORT CA (file) USER PASS | TOKEN, ROUND=bulk-Big|bulk-Small|each|login, COUNT (logins), LIMIT (each)
import imaplib, json, os, ssl, statistics, time

ctx = ssl.create_default_context(cafile=os.environ['CA'])

def connect():
    m = imaplib.IMAP4_SSL('127.0.0.1', int(os.environ['PORT']), ssl_context=ctx)
    if os.environ['MODE'] == 'proxy':
        m.login(os.environ['USER'], os.environ['PASS'])
    else:
        m.authenticate('XOAUTH2', lambda _: ('user=' + os.environ['USER'] + '\x01auth=Bearer ' + os.environ['TOKEN'] + '\x01\x01').encode())
    return m

round_ = os.environ['ROUND']
if round_.startswith('bulk-'):
    m = connect()
    typ, data = m.select(round_[5:], readonly=True)
    count = int(data[0])
    start = time.perf_counter()
    typ, data = m.fetch('1:*', '(BODY.PEEK[])')
    seconds = time.perf_counter() - start
    size = sum(len(part[1]) for part in data if isinstance(part, tuple))
    m.logout()
    print(json.dumps({'messages': count, 'bytes': size, 'seconds': seconds}))
elif round_ == 'each':
    m = connect()
    typ, data = m.select('Small', readonly=True)
    count = min(int(data[0]), int(os.environ.get('LIMIT', data[0])))
    start = time.perf_counter()
    for i in range(1, count + 1):
        m.fetch(str(i), '(BODY.PEEK[])')
    seconds = time.perf_counter() - start
    m.logout()
    print(json.dumps({'messages': count, 'seconds': seconds}))
else:
    times = []
    for _ in range(int(os.environ.get('COUNT', '30'))):
        start = time.perf_counter()
        m = connect()
        m.select('INBOX')
        times.append((time.perf_counter() - start) * 1000)
        m.logout()
    print(json.dumps({'medianMs': statistics.median(times), 'p90Ms': sorted(times)[int(len(times) * 0.9)]}))
