package link

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseFaultsReadsTheDocumentedExample(t *testing.T) {
	got, err := ParseFaults("drop@4096,corrupt@10000,stall@20000:2s,disconnect@50000,reset@70000,random=0.0005:drop|corrupt")
	if err != nil {
		t.Fatal(err)
	}
	want := []Fault{
		{Kind: Drop, Dir: HostToDevice, Offset: 4096, Count: 1},
		{Kind: Corrupt, Dir: HostToDevice, Offset: 10000, Count: 1},
		{Kind: Stall, Dir: HostToDevice, Offset: 20000, Duration: 2 * time.Second},
		{Kind: Disconnect, Dir: HostToDevice, Offset: 50000},
		{Kind: Reset, Dir: HostToDevice, Offset: 70000},
		{Kind: Drop, Dir: BothWays, Rate: 0.00025, Count: 1},
		{Kind: Corrupt, Dir: BothWays, Rate: 0.00025, Count: 1},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ParseFaults:\n got %+v\nwant %+v", got, want)
	}
}

func TestParseFaultsReadsDirectionsSizesAndArguments(t *testing.T) {
	for _, tc := range []struct {
		spec string
		want Fault
	}{
		{"drop@d2h:12:3", Fault{Kind: Drop, Dir: DeviceToHost, Offset: 12, Count: 3}},
		{"corrupt@h2d:64k", Fault{Kind: Corrupt, Dir: HostToDevice, Offset: 64 << 10, Count: 1}},
		{"stall@1M", Fault{Kind: Stall, Dir: HostToDevice, Offset: 1 << 20, Duration: DefaultStall}},
		{"disconnect@d2h:0:3s", Fault{Kind: Disconnect, Dir: DeviceToHost, Duration: 3 * time.Second}},
		{" reset@d2h:7 ", Fault{Kind: Reset, Dir: DeviceToHost, Offset: 7}},
		{"random=0.001:stall:h2d", Fault{Kind: Stall, Dir: HostToDevice, Rate: 0.001, Duration: RandomStall}},
		{"random=1:disconnect", Fault{Kind: Disconnect, Dir: BothWays, Rate: 1, Duration: RandomReplug}},
	} {
		got, err := ParseFaults(tc.spec)
		if err != nil || len(got) != 1 || got[0] != tc.want {
			t.Errorf("ParseFaults(%q) = %+v, %v; want %+v", tc.spec, got, err, tc.want)
		}
	}
	if got, err := ParseFaults("random=0.002"); err != nil || len(got) != 2 || got[0].Kind != Drop || got[1].Kind != Corrupt {
		t.Errorf("random without kinds = %+v, %v; want drop|corrupt", got, err)
	}
	if got, err := ParseFaults("  "); err != nil || got != nil {
		t.Errorf("empty spec = %v, %v; want a clean line", got, err)
	}
}

func TestParseFaultsSaysWhatIsWrong(t *testing.T) {
	for _, tc := range []struct{ spec, want string }{
		{"drop", "kind@offset"},
		{"explode@5", `unknown fault "explode"`},
		{"drop@-1", "offset"},
		{"drop@12x", "offset"},
		{"drop@5:0", "byte count"},
		{"stall@5:forever", "duration"},
		{"stall@5:-1s", "duration"},
		{"stall@5:2h", "duration"},
		{"reset@5:1s", "no argument"},
		{"drop@d2h:5:1:2", "kind@"},
		{"drop@5:", "empty argument"},
		{"random=0", "rate"},
		{"random=1.5", "rate"},
		{"random=NaN", "rate"},
		{"random=0.1:drop|drop", "twice"},
		{"random=0.1:drop:h2d:x", "random=rate"},
		{"drop@5,,drop@6", "kind@offset"},
	} {
		_, err := ParseFaults(tc.spec)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "docs/simulator.md") {
			t.Errorf("ParseFaults(%q) = %v; want an error about %q pointing at docs/simulator.md", tc.spec, err, tc.want)
		}
	}
}

func TestFormatFaultsReadsBack(t *testing.T) {
	spec := "drop@4096,corrupt@d2h:10000:4,stall@20000:2s,disconnect@50000:1.5s,reset@70000,random=0.0005:drop|corrupt"
	faults, err := ParseFaults(spec)
	if err != nil {
		t.Fatal(err)
	}
	again, err := ParseFaults(FormatFaults(faults))
	if err != nil || !reflect.DeepEqual(again, faults) {
		t.Fatalf("FormatFaults = %q reads back as %+v, %v", FormatFaults(faults), again, err)
	}
}

func FuzzParseFaults(f *testing.F) {
	for _, s := range []string{
		"drop@4096,corrupt@10000,stall@20000:2s,disconnect@50000,reset@70000,random=0.0005:drop|corrupt",
		"drop@d2h:12:3", "stall@1M", "disconnect@d2h:0:3s", "random=1:disconnect:h2d",
		"random=1e-300", "drop@1125899906842624", "stall@5:1h", ",", "random=0.1:drop|drop",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		faults, err := ParseFaults(spec)
		if err != nil {
			return
		}
		for _, x := range faults {
			if x.Kind < Drop || x.Kind > Reset || x.Dir < HostToDevice || x.Dir > BothWays ||
				x.Offset < 0 || x.Rate < 0 || x.Rate > 1 || x.Duration < 0 || x.Duration > maxFaultDuration ||
				(x.Rate == 0 && x.Dir == BothWays) || ((x.Kind == Drop || x.Kind == Corrupt) && x.Count < 1) {
				t.Fatalf("ParseFaults(%q) accepted an impossible fault %+v", spec, x)
			}
		}
		again, err := ParseFaults(FormatFaults(faults))
		if err != nil || !reflect.DeepEqual(again, faults) {
			t.Fatalf("ParseFaults(%q) = %+v; formatted %q reads back as %+v, %v", spec, faults, FormatFaults(faults), again, err)
		}
	})
}
