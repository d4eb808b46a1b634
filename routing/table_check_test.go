package routing

import (
	"errors"
	"fmt"
)

// errInvariant is returned by check, which the tests use to verify the
// structural invariants the lookup relies on.
var errInvariant = errors.New("routing: trie invariant violated")

func check[P comparable](n *node[P], parentBits int, maxBits uint8) error {
	if n == nil {
		return nil
	}
	switch {
	case int(n.bits) <= parentBits && parentBits >= 0:
		return fmt.Errorf("%w: node /%d under /%d", errInvariant, n.bits, parentBits)
	case n.bits > maxBits:
		return fmt.Errorf("%w: node /%d exceeds /%d", errInvariant, n.bits, maxBits)
	case n.key != n.key.and(maskOf(n.bits)):
		return fmt.Errorf("%w: node /%d not masked", errInvariant, n.bits)
	case !n.hasPeer && (n.child[0] == nil || n.child[1] == nil):
		return fmt.Errorf("%w: peerless node /%d with fewer than two children", errInvariant, n.bits)
	}
	for b, c := range n.child {
		if c == nil {
			continue
		}
		if !n.contains(c.key) || c.key.bit(n.bits) != uint8(b) {
			return fmt.Errorf("%w: child of /%d on the wrong side", errInvariant, n.bits)
		}
		if err := check(c, int(n.bits), maxBits); err != nil {
			return err
		}
	}
	return nil
}

// checkJump compares f's jump table with one built the obvious way: by
// walking from the root for each of the 256 values of the indexed bits.
func checkJump[P comparable](f *trie[P], maxBits uint8) error {
	root := f.root
	if root == nil || (root.child[0] == nil && root.child[1] == nil) || root.bits+8 > maxBits {
		if f.jump != nil {
			return fmt.Errorf("%w: jump table on a trie that should have none", errInvariant)
		}
		return nil
	}
	if f.jump == nil {
		return fmt.Errorf("%w: no jump table", errInvariant)
	}
	end := root.bits + 8
	for i := range 256 {
		k := root.key
		for b := range uint8(8) {
			if i&(0x80>>b) == 0 {
				continue
			}
			if pos := root.bits + b; pos < 64 {
				k.hi |= 1 << (63 - pos)
			} else {
				k.lo |= 1 << (127 - uint(pos))
			}
		}
		var best *node[P]
		n := root
		for n != nil && n.bits < end {
			if !n.contains(k) {
				n = nil
				break
			}
			if n.hasPeer {
				best = n
			}
			n = n.child[k.bit(n.bits)]
		}
		if got := f.jump[i]; got.start != n || got.best != best {
			return fmt.Errorf("%w: jump entry %d under /%d is {%p %p}, want {%p %p}", errInvariant, i, root.bits, got.start, got.best, n, best)
		}
	}
	return nil
}
