package cache

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// IndexFile is the name of the index database inside its directory.
const IndexFile = "index.db"

// indexLockTimeout bounds the wait for another process's hold on the file.
const indexLockTimeout = 10 * time.Second

var bucketTags = []byte("tags")

// Entry is a remembered positive answer.
type Entry struct {
	// Ref is the fully qualified reference, "registry/repo:tag".
	Ref string `json:"-"`
	// Digest is the manifest digest the registry gave.
	Digest v1.Hash `json:"digest"`
	// MediaType is the manifest media type, when known.
	MediaType types.MediaType `json:"mediaType,omitempty"`
	// Recorded is when the answer was recorded.
	Recorded time.Time `json:"recorded"`
}

// Index remembers tags known to exist, in a bbolt database under a
// directory. Only positive answers belong in it: tags are content
// addressed, so they stay true unless someone deletes the tag.
//
// The database file is opened for each operation and closed after it, so
// that many processes can share it: bbolt locks the file exclusively while
// writing and shared while reading, and commits are atomic, so concurrent
// writers lose nothing. Writes are not synced to disk: a positive answer
// lost to a power cut is asked of the registry again, and an index that a
// power cut left unreadable is started afresh by the next write. An Index
// is safe for concurrent use.
type Index struct {
	path string
	mu   sync.RWMutex // orders this process's own opens, sparing flock polling

	// Group commit: concurrent Puts are written in one transaction.
	pmu      sync.Mutex
	pending  []pendingPut
	flushing bool
}

type pendingPut struct {
	key  string
	raw  []byte
	done chan error
}

// OpenIndex opens the index in dir. The folder is made now; the database
// file is made by the first Put, so a lookup that only reads writes nothing.
func OpenIndex(dir string) (*Index, error) {
	if dir == "" {
		return nil, errors.New("opening index: empty directory")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("opening index: %w", err)
	}
	return &Index{path: filepath.Join(dir, IndexFile)}, nil
}

// Path returns the database file's path.
func (i *Index) Path() string { return i.path }

func (i *Index) open(readOnly bool) (*bolt.DB, error) {
	db, err := bolt.Open(i.path, 0o644, &bolt.Options{
		Timeout:  indexLockTimeout,
		ReadOnly: readOnly,
		// A cache of positive answers needs no fsync: see Index.
		NoSync:     true,
		NoGrowSync: true,
	})
	if err != nil {
		return nil, fmt.Errorf("opening index %s: %w", i.path, err)
	}
	return db, nil
}

// corrupt reports whether err says the database file is unreadable.
func corrupt(err error) bool {
	return errors.Is(err, bolterrors.ErrInvalid) || errors.Is(err, bolterrors.ErrChecksum) || errors.Is(err, bolterrors.ErrVersionMismatch)
}

func (i *Index) update(fn func(b *bolt.Bucket) error) (err error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	db, err := i.open(false)
	if corrupt(err) {
		// Only remembered answers are lost; the registry has them all.
		if rerr := os.Remove(i.path); rerr != nil {
			return fmt.Errorf("%w (removing it: %v)", err, rerr)
		}
		db, err = i.open(false)
	}
	if err != nil {
		return err
	}
	defer func() {
		if cerr := db.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("closing index: %w", cerr)
		}
	}()
	return db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketTags)
		if err != nil {
			return err
		}
		return fn(b)
	})
}

// Get returns the entry recorded for ref, if any.
func (i *Index) Get(ref name.Tag) (Entry, bool, error) {
	i.mu.RLock()
	defer i.mu.RUnlock()
	if _, err := os.Stat(i.path); errors.Is(err, os.ErrNotExist) {
		return Entry{}, false, nil
	}
	db, err := i.open(true)
	if err != nil {
		return Entry{}, false, err
	}
	defer db.Close()
	key := ref.Name()
	var raw []byte
	err = db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketTags); b != nil {
			if v := b.Get([]byte(key)); v != nil {
				raw = append([]byte(nil), v...)
			}
		}
		return nil
	})
	if err != nil {
		return Entry{}, false, fmt.Errorf("reading index: %w", err)
	}
	if raw == nil {
		return Entry{}, false, nil
	}
	var e Entry
	if err := json.Unmarshal(raw, &e); err != nil {
		return Entry{}, false, fmt.Errorf("decoding index entry for %s: %w", key, err)
	}
	e.Ref = key
	return e, true, nil
}

// GetMany returns the entries recorded for refs, by reference name, reading
// the database once.
func (i *Index) GetMany(refs []name.Tag) (map[string]Entry, error) {
	i.mu.RLock()
	defer i.mu.RUnlock()
	out := make(map[string]Entry, len(refs))
	if _, err := os.Stat(i.path); errors.Is(err, os.ErrNotExist) {
		return out, nil
	}
	db, err := i.open(true)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketTags)
		if b == nil {
			return nil
		}
		for _, ref := range refs {
			v := b.Get([]byte(ref.Name()))
			if v == nil {
				continue
			}
			var e Entry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("decoding index entry for %s: %w", ref.Name(), err)
			}
			e.Ref = ref.Name()
			out[e.Ref] = e
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading index: %w", err)
	}
	return out, nil
}

// Put records that ref exists with the given digest.
func (i *Index) Put(ref name.Tag, digest v1.Hash, mediaType types.MediaType) error {
	if digest.Hex == "" {
		return fmt.Errorf("recording %s: empty digest", ref.Name())
	}
	raw, err := json.Marshal(Entry{Digest: digest, MediaType: mediaType, Recorded: time.Now().UTC()})
	if err != nil {
		return fmt.Errorf("encoding index entry: %w", err)
	}
	if err := i.put(ref.Name(), raw); err != nil {
		return fmt.Errorf("recording %s: %w", ref.Name(), err)
	}
	return nil
}

// put queues a record and returns once a commit holding it is durable.
// The first caller to find no commit under way writes everything queued,
// in one transaction, until the queue is empty, so concurrent lookups pay
// for one disk sync between them rather than one each.
func (i *Index) put(key string, raw []byte) error {
	p := pendingPut{key: key, raw: raw, done: make(chan error, 1)}
	i.pmu.Lock()
	i.pending = append(i.pending, p)
	if i.flushing {
		i.pmu.Unlock()
		return <-p.done
	}
	i.flushing = true
	i.pmu.Unlock()
	for {
		i.pmu.Lock()
		batch := i.pending
		i.pending = nil
		if len(batch) == 0 {
			i.flushing = false
			i.pmu.Unlock()
			return <-p.done
		}
		i.pmu.Unlock()
		err := i.update(func(b *bolt.Bucket) error {
			for _, q := range batch {
				if err := b.Put([]byte(q.key), q.raw); err != nil {
					return err
				}
			}
			return nil
		})
		for _, q := range batch {
			q.done <- err
		}
	}
}

// Delete forgets ref. Deleting an unknown ref is not an error.
func (i *Index) Delete(ref name.Tag) error {
	if err := i.update(func(b *bolt.Bucket) error { return b.Delete([]byte(ref.Name())) }); err != nil {
		return fmt.Errorf("forgetting %s: %w", ref.Name(), err)
	}
	return nil
}
